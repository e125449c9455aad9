/// <reference lib="dom" />
// Does a page watching the web view slow the emulator? A 1,000-device fleet (device-sim in a child
// process, official SDK over MQTT) registers against the tutorial stack, in rounds alternating
// without and with a headless chromium page open on the web view's fleet charts. Reported per
// round: registrations per second and latency as device-sim measured them, the emulator's own
// request-to-outcome latency, the CPU time of the process serving emulator, web view and allocator
// per registration, and how long after the fleet ended the page showed its last registration.
// Run: npm run bench (or node packages/e2e/dist/bench/web-view.js --devices 1000 --rounds 2 [--tab hubs]).
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { percentile } from '@dpskit/device-sim';
import { type BrowserSession, openBrowser } from '../harness/browser.js';
import { runDeviceSim } from '../harness/device-sim.js';
import { startTutorialStack } from '../harness/stack.js';
import { TUTORIAL } from '../harness/tutorial.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '2' },
    /** The tab the page shows: fleet (charts) or hubs (the toasters' hub, live). */
    tab: { type: 'string', default: 'fleet' },
  },
});
const devices = Number(values.devices);
const concurrency = Number(values.concurrency);
const rounds = Number(values.rounds);
const tab = values.tab === 'hubs' ? 'hubs' : 'fleet';

interface Round {
  page: boolean;
  regsPerSecond: number;
  deviceP50: number;
  deviceP99: number;
  emulatorP50: number;
  emulatorP99: number;
  cpuMsPerRegistration: number;
  pageLagMs: number | null;
}

async function main(): Promise<void> {
  const stack = await startTutorialStack();
  let browser: BrowserSession | undefined;
  const results: Round[] = [];
  try {
    const cpu = cpus();
    console.log('dpskit web view benchmark: does a subscribed page slow the emulator?');
    console.log(`machine: ${cpu.length} x ${cpu[0]?.model.trim() ?? 'unknown CPU'}, Node ${process.version}`);
    console.log(
      `method: ${devices} devices (device-sim fleet in a child process, MQTT, ${concurrency} in flight, half toasters ` +
        `assigned, half heat pumps refused by the tutorial allocator) per round; rounds alternate without / with ` +
        `a headless chromium page on the web view's ${tab === 'hubs' ? 'hubs tab' : 'fleet charts'}; CPU = this process (emulator, web view, allocator).`,
    );
    console.log(
      `load average before: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    console.log('');
    console.log('round  page  regs/s  device p50/p99 ms  emulator p50/p99 ms  CPU ms/reg  page lag ms');
    let offset = 0;
    for (let round = 1; round <= rounds * 2; round++) {
      const withPage = round % 2 === 0;
      if (withPage) {
        browser = await openBrowser();
        await browser.page.goto(`${stack.emulator.webViewUrl}#${tab}`);
        await browser.page.getByTestId('stream-state').filter({ hasText: 'live' }).waitFor();
      }
      const durations: number[] = [];
      const onEvent = (event: { durationMs: number }) => durations.push(event.durationMs);
      stack.emulator.on('registration', onEvent);
      const cpuBefore = process.cpuUsage();
      const run = await runDeviceSim(
        [
          'fleet',
          ...stack.connectionArgs('mqtt'),
          '--count',
          String(devices),
          '--start',
          String(offset + 1),
          '--concurrency',
          String(concurrency),
          '--registration-id-template',
          'contoso-toaster-{n:5},contoso-heatpump-{n:5}',
          '--json',
        ],
        { DPS_GROUP_KEY: TUTORIAL.groupKey },
      );
      const cpuUsed = process.cpuUsage(cpuBefore);
      const ended = performance.now();
      stack.emulator.off('registration', onEvent);
      offset += devices;
      if (run.code !== 0) throw new Error(`device-sim fleet failed (${run.code}): ${run.stderr}`);
      const summary = JSON.parse(run.stdout) as {
        registrationsPerSecond: number;
        latencyMs: { p50: number; p99: number } | null;
      };
      let pageLagMs: number | null = null;
      if (browser) {
        // The page holds the newest 5,000 attempts: it has kept up when it counts them all (on the
        // fleet tab), or when its hubs tab counts every hub device (5,000 per hub at most).
        const [selector, expected] =
          tab === 'fleet'
            ? ['[data-testid="kpi-total"]', String(Math.min(5000, stack.registrations.length))]
            : ['[data-testid="tab-hubs"]', `Hubs (${Math.min(5000, stack.emulator.hubDevices().length)})`];
        await browser.page.waitForFunction(
          ([query, text]) => document.querySelector(query)?.textContent?.replaceAll(',', '') === text,
          [selector, expected] as const,
          { timeout: 120_000, polling: 100 },
        );
        pageLagMs = Math.round(performance.now() - ended);
        await browser.close();
        browser = undefined;
      }
      const sorted = durations.sort((a, b) => a - b);
      const result: Round = {
        page: withPage,
        regsPerSecond: summary.registrationsPerSecond,
        deviceP50: summary.latencyMs?.p50 ?? Number.NaN,
        deviceP99: summary.latencyMs?.p99 ?? Number.NaN,
        emulatorP50: percentile(sorted, 50),
        emulatorP99: percentile(sorted, 99),
        cpuMsPerRegistration: (cpuUsed.user + cpuUsed.system) / 1000 / durations.length,
        pageLagMs,
      };
      results.push(result);
      console.log(
        `${String(round).padStart(5)}  ${withPage ? ' yes' : '  no'}  ${result.regsPerSecond.toFixed(0).padStart(6)}  ${`${result.deviceP50.toFixed(0)}/${result.deviceP99.toFixed(0)}`.padStart(17)}  ${`${result.emulatorP50}/${result.emulatorP99}`.padStart(19)}  ${result.cpuMsPerRegistration.toFixed(2).padStart(10)}  ${String(pageLagMs ?? '-').padStart(11)}`,
      );
    }
    const mean = (page: boolean, pick: (r: Round) => number) => {
      const list = results.filter((r) => r.page === page).map(pick);
      return list.reduce((a, b) => a + b, 0) / list.length;
    };
    const ratio = (pick: (r: Round) => number) => mean(true, pick) / mean(false, pick);
    console.log('');
    console.log(
      `with page / without (1.00 = no difference): regs/s ${ratio((r) => r.regsPerSecond).toFixed(2)}, ` +
        `device p50 ${ratio((r) => r.deviceP50).toFixed(2)}, emulator p50 ${ratio((r) => r.emulatorP50).toFixed(2)}, ` +
        `emulator p99 ${ratio((r) => r.emulatorP99).toFixed(2)}, CPU per registration ${ratio((r) => r.cpuMsPerRegistration).toFixed(2)}`,
    );
    console.log(
      `load average after: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
  } finally {
    await browser?.close();
    await stack.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
