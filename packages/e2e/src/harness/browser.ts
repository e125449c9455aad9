import { existsSync } from 'node:fs';
import { type Browser, type CDPSession, chromium, type Page } from 'playwright-core';

/** Debian's chromium (apt-get install -y chromium); CHROMIUM_PATH points elsewhere. No browser download. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export interface BrowserSession {
  browser: Browser;
  page: Page;
  /**
   * Everything that crossed the wire between the page and any server, as text: request URLs and
   * headers, response headers and bodies, and each server-sent event's data.
   */
  traffic: string[];
  /** Resolves when every response body asked for so far has been read. */
  trafficSettled(): Promise<void>;
  close(): Promise<void>;
}

/** Headless chromium with one page whose network traffic is recorded through the DevTools protocol. */
export async function openBrowser(viewport = { width: 1440, height: 900 }): Promise<BrowserSession> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`No chromium at ${CHROMIUM_PATH}: install it (apt-get install -y chromium) or set CHROMIUM_PATH.`);
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport });
    // Waits for what the page shows: generous, for loaded CI machines (load 40 on 2 cores).
    page.setDefaultTimeout(90_000);
    const traffic: string[] = [];
    const pending = new Set<Promise<void>>();
    const cdp: CDPSession = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    cdp.on('Network.requestWillBeSent', (e) => traffic.push(`${e.request.url} ${JSON.stringify(e.request.headers)}`));
    cdp.on('Network.responseReceived', (e) =>
      traffic.push(`${e.response.status} ${e.response.url} ${JSON.stringify(e.response.headers)}`),
    );
    cdp.on('Network.eventSourceMessageReceived', (e) => traffic.push(e.data));
    cdp.on('Network.loadingFinished', (e) => {
      const read = cdp
        .send('Network.getResponseBody', { requestId: e.requestId })
        .then((body) => {
          traffic.push(body.base64Encoded ? Buffer.from(body.body, 'base64').toString('utf8') : body.body);
        })
        .catch(() => {})
        .finally(() => pending.delete(read));
      pending.add(read);
    });
    return {
      browser,
      page,
      traffic,
      async trafficSettled() {
        while (pending.size > 0) await Promise.all([...pending]);
      },
      close: () => browser.close(),
    };
  } catch (err) {
    await browser.close();
    throw err;
  }
}
