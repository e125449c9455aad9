import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EnrollmentGroup, IndividualEnrollment } from '@dpskit/contracts';
import { type Logger, listen, PortError } from '@dpskit/node-kit';
import type { AttemptStore } from '../core/attempts.js';
import type { ChangedHubDevice, HubChangeFeed, HubStore } from '../hub/core/store.js';
import { deviceKeys, hubDeviceDetail, hubDeviceSummary } from './hub-views.js';
import { collectSecrets, redact } from './redact.js';
import { type EnrollmentView, enrollmentView, type WebViewOverview } from './views.js';

/** Where the web view reads from: the store and the emulator's settings, nothing else. */
export interface WebViewSource {
  overview(): WebViewOverview;
  enrollments(): { groups: EnrollmentGroup[]; individuals: IndividualEnrollment[] };
  /** Registration records per enrollment, keyed `kind:lower-case id`. */
  registrationCounts(): Map<string, number>;
  attempts: Pick<AttemptStore, 'attemptsAfter' | 'latestAttempts' | 'getAttempt'>;
  /** The service API's and the hubs' policy keys (only to redact them, should one ever appear). */
  policyKeys(): string[];
  /** The emulated hubs: their host names and their store (identities, modules, twins, telemetry, change feed). */
  hubs?: { names(): string[]; store: HubChangeFeed & Pick<HubStore, 'telemetry' | 'modulesOf'> };
}

export interface WebViewOptions {
  source: WebViewSource;
  /** Default 127.0.0.1: the page is for the person at this machine. */
  host: string;
  port: number;
  /** When `port` is taken, listen on a free one instead of failing (the emulator's default port). */
  fallbackToFreePort?: boolean;
  log: Logger;
  /** The built page (index.html, app.js, app.css); default: the package's `dist/web-ui`. */
  assetsDir?: string;
  /** How often a live stream looks for new attempts in the store (default 500 ms). */
  pollIntervalMs?: number;
  /** Open live streams at most (default 16); more get a 503. */
  maxStreams?: number;
  /**
   * Names this server's run (default: a random id). The page compares it across reconnections: a
   * different one (the emulator restarted, its state folder perhaps reset) makes it load afresh.
   */
  epoch?: string;
}

export interface RunningWebView {
  host: string;
  port: number;
  /** `http://127.0.0.1:PORT/` (IPv6 hosts bracketed). */
  url: string;
  close(): Promise<void>;
}

/** Attempts (hub devices per hub) sent at most per answer or stream message. */
const MAX_PAGE = 5000;
/** Telemetry messages a device's detail shows (the store keeps at least this many per device). */
const DETAIL_TELEMETRY = 10;
const STREAM_BATCH = 1000;
/** A stream whose client reads slower than this much buffered output is skipped until it drains. */
const STREAM_BUFFER_LIMIT = 1024 * 1024;
const SECRETS_TTL_MS = 1000;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json; charset=utf-8',
};

const SECURITY_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Content-Security-Policy':
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
};

/**
 * The emulator's read-only web view: the built page as static files, a JSON API over the store
 * (`/api/overview`, `/api/enrollments`, `/api/attempts`, `/api/attempts/{seq}`, `/api/hubs`,
 * `/api/hubs/{hub}/devices/{id}`) and a live stream of new attempts and hub device changes as
 * server-sent events (`/api/stream`), read from the store, so that it shows what any process
 * writing the same state folder did. Every answer passes `redact`.
 */
export async function startWebView(options: WebViewOptions): Promise<RunningWebView> {
  const { source, log } = options;
  const assets = loadAssets(options.assetsDir ?? defaultAssetsDir());
  const pollIntervalMs = options.pollIntervalMs ?? 500;
  const maxStreams = options.maxStreams ?? 16;
  const streams = new Set<http.ServerResponse>();
  const loopback = isLoopback(options.host);
  const epoch = options.epoch ?? randomUUID();
  const hubs = source.hubs;

  let secrets: { list: string[]; at: number } | undefined;
  const currentSecrets = () => {
    // Its age on the monotonic clock: by a wall clock set back (NTP, a VM resumed) a list read
    // before would have looked new for as long as the jump, and keys created since gone unmasked.
    const now = performance.now();
    if (!secrets || now - secrets.at > SECRETS_TTL_MS) {
      secrets = { list: collectSecrets(source.enrollments(), source.policyKeys()), at: now };
    }
    return secrets.list;
  };
  /** `json` is JSON text already masked for what only it can know (a device's keys). */
  const sendJsonText = (res: http.ServerResponse, status: number, json: string) => {
    const body = redact(json, currentSecrets());
    res.writeHead(status, {
      ...SECURITY_HEADERS,
      'Content-Type': 'application/json; charset=utf-8',
      'Cache-Control': 'no-store',
      'Content-Length': Buffer.byteLength(body),
    });
    res.end(body);
  };
  const sendJson = (res: http.ServerResponse, status: number, value: unknown) =>
    sendJsonText(res, status, JSON.stringify(value));
  const sendError = (res: http.ServerResponse, status: number, message: string) =>
    sendJson(res, status, { error: message });

  const enrollments = (): { groups: EnrollmentView[]; individuals: EnrollmentView[] } => {
    const counts = source.registrationCounts();
    const { groups, individuals } = source.enrollments();
    return {
      groups: groups.map((g) =>
        enrollmentView('group', g, counts.get(`group:${g.enrollmentGroupId.toLowerCase()}`) ?? 0),
      ),
      individuals: individuals.map((i) =>
        enrollmentView('individual', i, counts.get(`individual:${i.registrationId.toLowerCase()}`) ?? 0),
      ),
    };
  };

  const hubCounts = (): Record<string, number> => {
    const counts = hubs?.store.deviceCounts() ?? new Map<string, number>();
    return Object.fromEntries((hubs?.names() ?? []).map((name) => [name, counts.get(name.toLowerCase()) ?? 0]));
  };

  const openStream = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => {
    if (streams.size >= maxStreams) return sendError(res, 503, `At most ${maxStreams} live streams are served.`);
    const resume = streamStart(epoch, header(req, 'last-event-id'), url.searchParams);
    if (!resume.ok) return sendError(res, 400, resume.error);
    let last = resume.attempts ?? source.attempts.latestAttempts(1)[0]?.seq ?? 0;
    let lastDevice = resume.devices ?? hubs?.store.latestDeviceChange() ?? 0;
    // Event ids carry this run's epoch and both positions: a reconnecting EventSource sends the last one back.
    const eventId = () => `${epoch}:${last}:${lastDevice}`;
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
    });
    // HEAD: the headers, sent by end(). Node sends a HEAD answer's headers with its end only, so a
    // stream opened for it sent nothing, ever, and held one of the maxStreams slots.
    if (req.method === 'HEAD') return res.end();
    res.write(`retry: 2000\nid: ${eventId()}\nevent: ready\ndata: ${JSON.stringify({ epoch })}\n\n`);
    streams.add(res);
    let sinceWrite = 0;
    const poll = () => {
      if (res.writableLength > STREAM_BUFFER_LIMIT) return;
      try {
        for (;;) {
          const rows = source.attempts.attemptsAfter(last, STREAM_BATCH);
          if (rows.length === 0) break;
          last = rows[rows.length - 1]?.seq ?? last;
          res.write(`id: ${eventId()}\nevent: attempts\ndata: ${redact(JSON.stringify(rows), currentSecrets())}\n\n`);
          sinceWrite = 0;
          if (rows.length < STREAM_BATCH || res.writableLength > STREAM_BUFFER_LIMIT) break;
        }
        while (hubs && res.writableLength <= STREAM_BUFFER_LIMIT) {
          const changed = hubs.store.devicesChangedAfter(lastDevice, STREAM_BATCH);
          if (changed.length === 0) break;
          lastDevice = changed[changed.length - 1]?.seq ?? lastDevice;
          // The counts let the page notice devices deleted meanwhile (a deletion is no write to follow).
          const data = `{"devices":${summariesJson(changed)},"counts":${JSON.stringify(hubCounts())}}`;
          res.write(`id: ${eventId()}\nevent: hub-devices\ndata: ${redact(data, currentSecrets())}\n\n`);
          sinceWrite = 0;
          if (changed.length < STREAM_BATCH) break;
        }
        // A comment now and then keeps proxies and idle timers from closing a quiet stream.
        sinceWrite += pollIntervalMs;
        if (sinceWrite >= 15_000) {
          res.write(': keep-alive\n\n');
          sinceWrite = 0;
        }
      } catch (err) {
        log.error('web', `live stream failed: ${(err as Error).message}`);
        res.end();
      }
    };
    const timer = setInterval(poll, pollIntervalMs);
    res.on('close', () => {
      clearInterval(timer);
      streams.delete(res);
    });
  };

  const hubList = (res: http.ServerResponse) => {
    if (!hubs) return sendJson(res, 200, { seq: 0, hubs: [] });
    // The position first: a change while the list is read comes again on the stream, none is lost.
    const seq = hubs.store.latestDeviceChange();
    const counts = hubCounts();
    const list = hubs.names().map((hostName) => {
      const head = JSON.stringify({ hostName, deviceCount: counts[hostName] ?? 0 }).slice(0, -1);
      return `${head},"devices":${summariesJson(hubs.store.latestChangedDevices(hostName, MAX_PAGE))}}`;
    });
    return sendJsonText(res, 200, `{"seq":${seq},"hubs":[${list.join(',')}]}`);
  };

  const hubDevice = (res: http.ServerResponse, hubText: string, deviceText: string) => {
    const hub = hubs?.names().find((name) => name.toLowerCase() === hubText.toLowerCase());
    if (!hubs || !hub) return sendError(res, 404, `${hubText.slice(0, 128)} is not one of the emulated hubs.`);
    const changed = hubs.store.changedDevice(hub, deviceText);
    if (!changed) return sendError(res, 404, `No device "${deviceText.slice(0, 128)}" in ${hub}.`);
    const modules = hubs.store.modulesOf(hub, deviceText);
    const telemetry = hubs.store.telemetry(hub, deviceText, DETAIL_TELEMETRY);
    return sendJsonText(
      res,
      200,
      redact(JSON.stringify(hubDeviceDetail(changed, modules, telemetry)), deviceKeys([changed.device, ...modules])),
    );
  };

  const handle = (req: http.IncomingMessage, res: http.ServerResponse) => {
    // A page elsewhere that points its own name at 127.0.0.1 (DNS rebinding) must not read this one.
    if (loopback && !isLoopbackHostHeader(req.headers.host)) {
      return sendError(res, 403, 'The web view answers requests for localhost, 127.0.0.1 or [::1] only.');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return sendError(res, 405, 'The web view is read-only: GET only.');
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    if (path === '/api/overview') return sendJson(res, 200, { ...source.overview(), epoch });
    if (path === '/api/enrollments') return sendJson(res, 200, enrollments());
    if (path === '/api/attempts') {
      const limitText = url.searchParams.get('limit') ?? String(MAX_PAGE);
      const limit = wholeNumber(limitText);
      if (limit === undefined || limit < 1 || limit > MAX_PAGE)
        return sendError(res, 400, `limit must be a whole number from 1 to ${MAX_PAGE}, not "${limitText}".`);
      const afterText = url.searchParams.get('after');
      if (afterText === null) return sendJson(res, 200, source.attempts.latestAttempts(limit));
      const after = wholeNumber(afterText);
      if (after === undefined) return sendError(res, 400, `after must be a whole number, not "${afterText}".`);
      return sendJson(res, 200, source.attempts.attemptsAfter(after, limit));
    }
    const attempt = /^\/api\/attempts\/([^/]+)$/.exec(path);
    if (attempt) {
      const seq = wholeNumber(attempt[1] ?? '');
      if (seq === undefined) return sendError(res, 400, 'An attempt is named by its whole-number seq.');
      const entry = source.attempts.getAttempt(seq);
      return entry
        ? sendJson(res, 200, entry)
        : sendError(res, 404, `Attempt ${seq} is not in the store (it may be older than the history kept).`);
    }
    if (path === '/api/hubs') return hubList(res);
    const device = /^\/api\/hubs\/([^/]+)\/devices\/([^/]+)$/.exec(path);
    if (device) {
      const [hubText, deviceText] = [decodePathSegment(device[1]), decodePathSegment(device[2])];
      if (hubText === undefined || deviceText === undefined)
        return sendError(res, 400, 'The hub and device id must be percent-encoded UTF-8.');
      return hubDevice(res, hubText, deviceText);
    }
    if (path === '/api/stream') return openStream(req, res, url);
    if (path.startsWith('/api/')) return sendError(res, 404, `No such API: ${path}`);

    const asset = assets.get(path === '/' ? '/index.html' : path);
    if (!asset) {
      if (assets.size === 0 && path === '/') {
        res.writeHead(503, { ...SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' });
        return res.end('The web view was not built: run the package build (npm run build); the /api/ routes work.\n');
      }
      return sendError(res, 404, 'Not found.');
    }
    if (req.headers['if-none-match'] === asset.etag) {
      res.writeHead(304, { ETag: asset.etag });
      return res.end();
    }
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'Content-Type': asset.type,
      'Content-Length': asset.body.length,
      'Cache-Control': 'no-cache',
      ETag: asset.etag,
    });
    res.end(req.method === 'HEAD' ? undefined : asset.body);
  };

  const server = http.createServer({ requestTimeout: 30_000, headersTimeout: 10_000, maxHeaderSize: 16 * 1024 });
  server.maxConnections = 256;
  server.on('request', (req, res) => {
    try {
      handle(req, res);
    } catch (err) {
      log.error('web', `web view request failed: ${(err as Error).message}`, { path: req.url?.slice(0, 128) });
      if (!res.headersSent) sendError(res, 500, 'Internal error.');
      else res.end();
    }
  });
  server.on('clientError', (_err, socket) => socket.destroy());

  const target = {
    label: 'the web view',
    host: options.host,
    port: options.port,
    portSetting: '--web-port (webView.port)',
    hostSetting: '--web-host',
  };
  let port: number;
  try {
    port = await listen(server, target);
  } catch (err) {
    if (!(err instanceof PortError && err.code === 'EADDRINUSE' && options.fallbackToFreePort)) throw err;
    // Not a warning: the banner and the `started` line give the port taken; the default is a convenience.
    log.debug('web', `port ${options.port} is in use: the web view listens on a free port instead`);
    port = await listen(server, { ...target, port: 0 });
  }
  const shownHost = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    host: options.host,
    port,
    url: `http://${isWildcard(options.host) ? '127.0.0.1' : shownHost}:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const stream of streams) stream.end();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

interface Asset {
  type: string;
  body: Buffer;
  etag: string;
}

/** The built page, read once: a handful of files, served from memory. */
function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  if (!existsSync(dir)) return assets;
  for (const name of readdirSync(dir)) {
    const file = join(dir, name);
    const type = CONTENT_TYPES[extname(name)];
    if (!type || !statSync(file).isFile()) continue;
    const body = readFileSync(file);
    assets.set(`/${name}`, {
      type,
      body,
      etag: `"${body.length.toString(16)}-${statSync(file).mtimeMs.toString(16)}"`,
    });
  }
  return assets;
}

/** `dist/web-ui` beside this module when built; from the sources (tests), the package's built copy. */
function defaultAssetsDir(): string {
  const built = fileURLToPath(new URL('../web-ui/', import.meta.url));
  return existsSync(built) ? built : fileURLToPath(new URL('../../dist/web-ui/', import.meta.url));
}

type StreamStart = { ok: true; attempts?: number; devices?: number } | { ok: false; error: string };

/**
 * Where a live stream starts. A reconnecting EventSource sends the last event id it saw
 * (`epoch:attemptSeq:deviceSeq`), and the URL it first opened: the id wins, but only from this
 * run (`epoch`); positions of another run mean nothing here, so the stream starts at the newest
 * and its `ready` event tells the page to load afresh. Scripts give `?after=SEQ` (attempts) and
 * `?devicesAfter=SEQ`, or a whole-number Last-Event-ID; with `?epoch=` of another run they are ignored.
 */
function streamStart(epoch: string, lastEventId: string | undefined, params: URLSearchParams): StreamStart {
  if (lastEventId !== undefined) {
    const ours = /^([^:]+):(\d{1,15}):(\d{1,15})$/.exec(lastEventId);
    if (ours)
      return ours[1] === epoch ? { ok: true, attempts: Number(ours[2]), devices: Number(ours[3]) } : { ok: true };
    const seq = wholeNumber(lastEventId);
    if (seq !== undefined) return { ok: true, attempts: seq };
    return { ok: false, error: `Last-Event-ID must be an event id of this stream, not "${lastEventId.slice(0, 64)}".` };
  }
  const start: StreamStart = { ok: true };
  for (const [param, key] of [
    ['after', 'attempts'],
    ['devicesAfter', 'devices'],
  ] as const) {
    const text = params.get(param);
    if (text === null) continue;
    const parsed = wholeNumber(text);
    if (parsed === undefined)
      return { ok: false, error: `${param} must be a whole number, not "${text.slice(0, 64)}".` };
    start[key] = parsed;
  }
  const from = params.get('epoch');
  return from !== null && from !== epoch ? { ok: true } : start;
}

function decodePathSegment(segment: string | undefined): string | undefined {
  try {
    return segment === undefined ? undefined : decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/**
 * Hub device summaries as a JSON array, each masked for its own device's keys: linear in the
 * devices (masking every device's keys in the whole list would cost devices² for a long one).
 */
function summariesJson(changed: readonly ChangedHubDevice[]): string {
  return `[${changed.map((c) => redact(JSON.stringify(hubDeviceSummary(c)), deviceKeys([c.device]))).join(',')}]`;
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function wholeNumber(text: string): number | undefined {
  return /^\d{1,15}$/.test(text) ? Number(text) : undefined;
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '';
}

function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === 'localhost' || host.startsWith('127.');
}

function isLoopbackHostHeader(host: string | undefined): boolean {
  if (!host) return false;
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : (host.split(':')[0] ?? '');
  return name === 'localhost' || name === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(name);
}
