/* tests of the conn layer: X(name) per test */
