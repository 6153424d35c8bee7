/* tests of the handshake layer: X(name) per test */
