/* tests of the utf8 layer: X(name) per test */
