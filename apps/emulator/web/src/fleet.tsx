import {
  ArcElement,
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  type ChartConfiguration,
  DoughnutController,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from 'chart.js';
import { useEffect, useRef, useState } from 'preact/hooks';
import { type FleetStats, fleetStats } from '../../src/web/fleet-stats.js';
import type { AttemptSummary } from './api.js';

Chart.register(
  ArcElement,
  BarController,
  BarElement,
  CategoryScale,
  DoughnutController,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
);
Chart.defaults.animation = false;
Chart.defaults.font.family = 'system-ui, sans-serif';

const COLORS = {
  assigned: '#2e8540',
  failed: '#c62828',
  other: '#8a6d00',
  p50: '#1565c0',
  p90: '#6a1b9a',
  p99: '#c62828',
};
const PALETTE = ['#1565c0', '#2e8540', '#6a1b9a', '#ef6c00', '#00838f', '#ad1457', '#5d4037', '#455a64'];

/** Charts are redrawn at most this often, however fast attempts arrive. */
const REDRAW_MS = 1000;

export function FleetView({ attempts }: { attempts: AttemptSummary[] }) {
  const [stats, setStats] = useState<FleetStats>(() => fleetStats(attempts, windowFor(attempts)));
  const latest = useRef(attempts);
  latest.current = attempts;
  useEffect(() => {
    let drawn = latest.current;
    const timer = setInterval(() => {
      if (latest.current === drawn) return;
      drawn = latest.current;
      setStats(fleetStats(drawn, windowFor(drawn)));
    }, REDRAW_MS);
    return () => clearInterval(timer);
  }, []);

  const labels = stats.seconds.map((s, i) =>
    i === stats.seconds.length - 1 ? 'last' : `${s - (stats.seconds.at(-1) ?? s)} s`,
  );
  const outcomeKeys = Object.keys(stats.outcomes).sort();
  const hubKeys = Object.keys(stats.hubs).sort();
  const lastSecond = stats.seconds.length
    ? (stats.rate.assigned.at(-1) ?? 0) + (stats.rate.failed.at(-1) ?? 0) + (stats.rate.other.at(-1) ?? 0)
    : 0;
  const peak = stats.seconds.reduce(
    (max, _s, i) =>
      Math.max(max, (stats.rate.assigned[i] ?? 0) + (stats.rate.failed[i] ?? 0) + (stats.rate.other[i] ?? 0)),
    0,
  );

  return (
    <div class="fleet">
      <div class="kpis" data-testid="fleet-kpis">
        <Kpi label="registrations" value={stats.total} testId="kpi-total" />
        <Kpi label="assigned" value={stats.outcomes.assigned ?? 0} testId="kpi-assigned" />
        <Kpi label="failed or refused" value={stats.total - (stats.outcomes.assigned ?? 0)} testId="kpi-failed" />
        <Kpi label="peak / s" value={peak} testId="kpi-peak" />
        <Kpi label="last second" value={lastSecond} testId="kpi-last" />
        <Kpi label="p50 ms" value={stats.overall?.p50} testId="kpi-p50" />
        <Kpi label="p90 ms" value={stats.overall?.p90} testId="kpi-p90" />
        <Kpi label="p99 ms" value={stats.overall?.p99} testId="kpi-p99" />
      </div>
      <div class="charts">
        <ChartBox
          title="Registrations per second (up to the last 2 minutes of activity)"
          testId="chart-rate"
          total={stats.rate.assigned.concat(stats.rate.failed, stats.rate.other).reduce((a, b) => a + b, 0)}
          config={{
            type: 'bar',
            data: {
              labels,
              datasets: [
                { label: 'assigned', data: stats.rate.assigned, backgroundColor: COLORS.assigned, stack: 'r' },
                { label: 'failed', data: stats.rate.failed, backgroundColor: COLORS.failed, stack: 'r' },
                { label: 'disabled / refused', data: stats.rate.other, backgroundColor: COLORS.other, stack: 'r' },
              ],
            },
            options: {
              scales: { x: { stacked: true, ticks: { maxTicksLimit: 13 } }, y: { stacked: true, beginAtZero: true } },
            },
          }}
        />
        <ChartBox
          title="Latency per second: p50, p90, p99 (ms, request to outcome)"
          testId="chart-latency"
          total={stats.latency.p50.filter((v) => v !== null).length}
          config={{
            type: 'line',
            data: {
              labels,
              datasets: (['p50', 'p90', 'p99'] as const).map((p) => ({
                label: p,
                data: stats.latency[p],
                borderColor: COLORS[p],
                backgroundColor: COLORS[p],
                spanGaps: true,
                pointRadius: 1.5,
                borderWidth: 1.5,
              })),
            },
            options: { scales: { x: { ticks: { maxTicksLimit: 13 } }, y: { beginAtZero: true } } },
          }}
        />
        <ChartBox
          title="Outcomes"
          testId="chart-outcomes"
          total={outcomeKeys.reduce((sum, k) => sum + (stats.outcomes[k] ?? 0), 0)}
          caption={outcomeKeys.map((k) => `${k} ${stats.outcomes[k]}`).join(' · ')}
          config={{
            type: 'doughnut',
            data: {
              labels: outcomeKeys,
              datasets: [
                {
                  data: outcomeKeys.map((k) => stats.outcomes[k] ?? 0),
                  backgroundColor: outcomeKeys.map((k) =>
                    k === 'assigned' ? COLORS.assigned : k.startsWith('failed') ? COLORS.failed : COLORS.other,
                  ),
                },
              ],
            },
            options: { plugins: { legend: { position: 'right' } } },
          }}
        />
        <ChartBox
          title="Assigned per hub"
          testId="chart-hubs"
          total={hubKeys.reduce((sum, k) => sum + (stats.hubs[k] ?? 0), 0)}
          caption={hubKeys.map((k) => `${k} ${stats.hubs[k]}`).join(' · ')}
          config={{
            type: 'bar',
            data: {
              // The hub's own name (the first label of its host name) fits beside the bar.
              labels: hubKeys.map((k) => k.split('.')[0] ?? k),
              datasets: [
                {
                  label: 'devices assigned',
                  data: hubKeys.map((k) => stats.hubs[k] ?? 0),
                  backgroundColor: hubKeys.map((_k, i) => PALETTE[i % PALETTE.length] as string),
                },
              ],
            },
            options: { indexAxis: 'y', plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true } } },
          }}
        />
      </div>
    </div>
  );
}

/** Seconds on the time axis: the recent activity's span (30 s at least, 2 minutes at most). */
function windowFor(attempts: AttemptSummary[]): number {
  const first = attempts[0];
  const last = attempts[attempts.length - 1];
  if (!first || !last) return 30;
  const span = Math.ceil((Date.parse(last.timestampUtc) - Date.parse(first.timestampUtc)) / 1000) + 5;
  return Math.min(120, Math.max(30, span));
}

function Kpi(props: { label: string; value: number | undefined; testId: string }) {
  return (
    <div class="kpi">
      <span class="kpi-value" data-testid={props.testId}>
        {props.value === undefined ? '—' : props.value.toLocaleString('en')}
      </span>
      <span class="kpi-label">{props.label}</span>
    </div>
  );
}

/** One Chart.js chart, created once and updated in place. `data-total` is what it draws, for tests. */
function ChartBox(props: {
  title: string;
  testId: string;
  total: number;
  caption?: string;
  config: ChartConfiguration<'bar' | 'line' | 'doughnut'>;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const chart = useRef<Chart<'bar' | 'line' | 'doughnut'> | undefined>(undefined);
  useEffect(() => {
    if (!canvas.current) return;
    if (!chart.current) {
      const config = props.config;
      config.options = { responsive: true, maintainAspectRatio: false, ...config.options };
      chart.current = new Chart(canvas.current, config);
    } else {
      chart.current.data = props.config.data;
      chart.current.update('none');
    }
  });
  useEffect(() => () => chart.current?.destroy(), []);
  return (
    <figure class="chart" data-testid={props.testId} data-total={props.total}>
      <figcaption>
        {props.title}
        {props.caption ? <div class="meta">{props.caption}</div> : null}
      </figcaption>
      <div class="canvas-box">
        <canvas ref={canvas} />
      </div>
    </figure>
  );
}
