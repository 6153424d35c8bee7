/* tests of the property layer: X(name) per test */
