import { Duplex } from 'node:stream';
import { destroyAfterGrace } from '../transport/connection-limits.js';
import { closeWebSocketWith, MQTT_WEBSOCKET_CLOSE } from '../transport/websocket-stream.js';
import { MqttPacketFramer } from './mqtt-framer.js';

/** MQTT 3.1.1 packet type of CONNECT (the high nibble of the first byte). */
const CONNECT = 1;

/**
 * The stream the hub's aedes broker serves a device connection on, between it and the TLS socket
 * (or WebSocket stream). It exists because of how aedes 1.x reads and closes:
 *
 * - aedes handles every packet of a read at once, each asynchronously (the CONNECT's
 *   authentication, a SUBSCRIBE's authorization), and reads again when they are done. A
 *   DISCONNECT destroys the connection as it is handled, before the answers to the packets read
 *   with it are written (mqtt-packet also holds each answer corked until the next tick); a
 *   malformed packet destroys it as it is parsed, before the packets read with it are handled.
 *   MQTT 3.1.1 has each packet answered in order (IoT Hub does) and a violation close the
 *   connection after the packets before it are served [MQTT-4.8.0-1].
 *
 *   So aedes gets one whole packet per read and the next only when it reads again, which it does
 *   once it has handled the one before (`readableHighWaterMark` 0: only a read() of an empty
 *   buffer calls `_read`). The packet is pushed a tick after `_read` (see there). While a CONNECT
 *   is handled the next packet also waits for `connectHandled()`: aedes reads once before the
 *   CONNECT is done, as it resumes after writing the CONNACK.
 *
 * - aedes closes by `destroy()`. Here that ends the socket after what was written (the answers
 *   reach the peer) and destroys it if the peer has not closed its side within
 *   REFUSED_PEER_GRACE_MS (destroyAfterGrace, as DPS's MQTT does); aedes sees this stream closed
 *   at once. Over WebSockets the close frame says why, with DPS's codes (websocket-stream.ts):
 *   1002 after a protocol violation (aedes destroys with an error: a malformed packet, a PUBLISH
 *   where the device may not; or a second CONNECT), 1009 after an oversized packet, 1000 else (a
 *   DISCONNECT, a refused CONNECT, the hub ending the session); unless the hub gave a code first
 *   (mqtt.ts: 1001 for a keepalive timeout, 1011 with a CONNACK 3), which stays.
 *
 * - Packet sizes are bounded here (aedes buffers a whole packet, and MQTT allows 256 MB): a
 *   packet announcing more than the bound is never read; the packets before it are served, then
 *   the connection is closed the same way.
 *
 * Bytes that come once the connection is closing are read and dropped: a close with unread bytes
 * resets the connection and could take the last answers with it.
 */
export class PacedMqttStream extends Duplex {
  /** The connection this stream runs on (its TLS socket holds the client certificate). */
  readonly carrier: Duplex;
  readonly #framer: MqttPacketFramer;
  readonly #onRefused: (size: number | undefined) => void;
  /** Whole packets read from the socket that aedes has not asked for yet. */
  #packets: Buffer[] = [];
  /** aedes asked for a packet and none was there. */
  #wanted = false;
  /** A CONNECT was handed over and aedes has not finished with it. */
  #connecting = false;
  /** A refused (oversized, malformed) packet follows the queued ones: close once they are served. */
  #refused = false;
  /** The refused packet announced more than the bound (rather than a malformed length). */
  #tooBig = false;
  /** A CONNECT was handed over before: another one is a protocol violation [MQTT-3.1.0-2]. */
  #connected = false;
  #secondConnect = false;
  /** The peer ended its side: end this stream once the queued packets are served. */
  #peerEnded = false;
  /** The carrier is corked while one read's packets are served (see #received). */
  #corked = false;
  #grace: NodeJS.Timeout | undefined;

  constructor(carrier: Duplex, maxPacketBytes: number, onRefused: (size: number | undefined) => void) {
    super({ readableHighWaterMark: 0 });
    this.carrier = carrier;
    this.#framer = new MqttPacketFramer(maxPacketBytes);
    this.#onRefused = onRefused;
    carrier.on('data', (chunk: Buffer) => this.#received(chunk));
    carrier.on('end', () => {
      this.#peerEnded = true;
      this.#feed();
    });
    carrier.on('error', (err) => this.destroy(err));
    carrier.on('close', () => {
      if (this.#grace) clearTimeout(this.#grace);
      this.destroy();
    });
    // The socket was paused for the handover, its first bytes put back: it flows from here.
    carrier.resume();
  }

  /** aedes has handled the CONNECT (its `clientReady`): the packets after it may follow. */
  connectHandled(): void {
    this.#connecting = false;
    this.#feed();
  }

  #received(chunk: Buffer): void {
    if (this.destroyed || this.#refused) return;
    const framed = this.#framer.push(chunk);
    for (const packet of framed.packets) this.#packets.push(packet);
    if (framed.kind === 'refused') {
      this.#refused = true;
      this.#tooBig = framed.size !== undefined;
      this.#onRefused(framed.size);
    } else if (this.#packets.length > 0) {
      // One read's packets at a time: the socket waits until aedes has taken them.
      this.carrier.pause();
    }
    if (this.#packets.length > 0 && !this.#corked) {
      // Their answers leave together, as one TLS record once the last of them is served (#feed),
      // as they would if aedes had them all at once: handed over one at a time, each answer was
      // a TLS record and a socket write of its own.
      this.#corked = true;
      this.carrier.cork();
    }
    this.#feed();
  }

  override _read(): void {
    this.#wanted = true;
    // Not pushed from inside read(): aedes reads from a packet handler's callback, run while its
    // parser is still emitting that packet; a packet returned there would be parsed re-entrantly
    // (mqtt-packet then emits the packet before it again). Pushed a tick later, it comes with
    // 'readable', on a stack of its own.
    process.nextTick(this.#feedSoon);
  }

  readonly #feedSoon = () => this.#feed();

  /** Hands aedes the next packet if it asked for one and may have it (else ends or closes, when due). */
  #feed(): void {
    if (!this.#wanted || this.#connecting || this.destroyed) return;
    const packet = this.#packets.shift();
    if (packet === undefined) {
      this.#uncork();
      if (this.#refused) this.destroy();
      else if (this.#peerEnded) this.push(null);
      else this.carrier.resume();
      return;
    }
    this.#wanted = false;
    if (packet[0] !== undefined && packet[0] >> 4 === CONNECT) {
      this.#secondConnect = this.#connected;
      this.#connected = true;
      this.#connecting = true;
    }
    this.push(packet);
  }

  #uncork(): void {
    if (!this.#corked) return;
    this.#corked = false;
    this.carrier.uncork();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.carrier.write(chunk)) callback();
    else this.#drained(callback);
  }

  /** Calls back once the carrier has written what it holds ('drain' never comes while it is corked). */
  #drained(callback: () => void): void {
    this.carrier.once('drain', () => callback());
    this.#uncork();
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    // What aedes wrote corked (mqtt-packet corks each packet) leaves in one TLS record.
    this.carrier.cork();
    let flowing = true;
    for (const { chunk } of chunks) flowing = this.carrier.write(chunk);
    this.carrier.uncork();
    if (flowing) callback();
    else this.#drained(callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#packets = [];
    this.#uncork();
    if (!this.carrier.destroyed) {
      // Read on (and drop, #received) what the peer still sends.
      this.carrier.resume();
      closeWebSocketWith(
        this.carrier,
        this.#refused
          ? this.#tooBig
            ? MQTT_WEBSOCKET_CLOSE.tooBig
            : MQTT_WEBSOCKET_CLOSE.protocolError
          : error || this.#secondConnect
            ? MQTT_WEBSOCKET_CLOSE.protocolError
            : MQTT_WEBSOCKET_CLOSE.normal,
      );
      this.carrier.end();
      this.#grace ??= destroyAfterGrace(this.carrier);
    }
    callback(error);
  }
}
