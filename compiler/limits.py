"""Compile-time limits shared by the builder and the built-ins."""

MAX_CONST_ELEMENTS = 1 << 24  # a public constant is stored in the bytecode
MAX_ELEMENTS = 1 << 40  # any tensor's element count
INT_LIMIT = 1 << 63  # compile-time ints must fit the 64-bit ring
