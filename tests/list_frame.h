/* tests of the frame layer: X(name) per test */
