/* tests of the crypto layer: X(name) per test */
