#!/usr/bin/env node
// Echo client on the Node `ws` package (tests/interop/node/node_modules),
// a reference peer for the conformance runner's client role:
//
//   node node_client_echo.mjs URL
//
// Like `wscat --echo`: sends every message back unchanged (same opcode),
// answers pings (ws does it itself), accepts messages up to 16 MiB, no
// compression, and exits when the connection is closed: status 0 after a
// close with 1000 (or no code), 1 if it never opened, 3 otherwise.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../../interop/node/package.json'));
const WebSocket = require('ws');

let opened = false;
const ws = new WebSocket(process.argv[2], {
  maxPayload: 16 * 1024 * 1024, perMessageDeflate: false, handshakeTimeout: 10000,
});
ws.on('open', () => { opened = true; });
ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
ws.on('error', (e) => { process.stderr.write(`node_client_echo: ${e.message}\n`); });
ws.on('close', (code) => process.exit(!opened ? 1 : (code === 1000 || code === 1005) ? 0 : 3));
