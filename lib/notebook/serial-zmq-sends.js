// Preloaded into the tslab kernel by the headless runner (node -r …/serial-zmq-sends.js …/tslab kernel …).
//
// Why: tslab 1.0.22 calls zeromq 6's socket.send() without awaiting it. zeromq allows only one send in flight per
// socket and throws "Socket is busy writing; only one send operation may be in progress" (EBUSY) otherwise. Under
// load (a PNG display just before the cell's end) the next send — e.g. the "idle" status — collides and the uncaught
// error kills the kernel. Chaining each socket's sends makes them wait for the previous one instead.
'use strict';
const zmq = require('zeromq');

// The native base class's send is read-only, so each socket class tslab uses gets its own (shadowing) send.
for (const SocketClass of [zmq.Publisher, zmq.Router, zmq.Reply]) {
  const proto = SocketClass.prototype;
  if (Object.prototype.hasOwnProperty.call(proto, '__diffusionSerialSends')) continue;
  const originalSend = proto.send; // inherited from the native Socket
  const tails = new WeakMap();
  Object.defineProperty(proto, 'send', {
    configurable: true,
    writable: true,
    value: function serialSend(message) {
      const previous = tails.get(this) || Promise.resolve();
      const next = previous.then(() => originalSend.call(this, message));
      tails.set(this, next.catch(() => undefined));
      next.catch(() => undefined); // tslab never awaits sends: a failed send must not become an unhandled rejection
      return next;
    },
  });
  Object.defineProperty(proto, '__diffusionSerialSends', { value: true });
}
