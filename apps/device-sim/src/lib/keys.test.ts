import { createInterface } from 'node:readline';
import { PassThrough, Readable } from 'node:stream';
import { deriveDeviceKey } from '@dpskit/contracts';
import { describe, expect, it } from 'vitest';
import { deriveKeysFromLines, formatDerivedKey } from './keys.js';

const GROUP_KEY = 'oiK77Oy7rBw8YB6IS6ukRChAw+Yq6GC61RMrPLSTiOOtdI+XDu0LmLuNm11p+qv2I+adqGUdZHm46zXAQdZoOA==';

async function derive(input: string, json = false) {
  const output = new PassThrough();
  const chunks: string[] = [];
  output.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
  const invalid: Array<[number, string]> = [];
  const report = await deriveKeysFromLines(Readable.from([input]), output, {
    groupKey: GROUP_KEY,
    json,
    onInvalid: (line, problem) => invalid.push([line, problem]),
  });
  output.end();
  return { report, text: chunks.join(''), invalid };
}

describe('deriveKeysFromLines', () => {
  it("derives the brief's vectors, skipping blank lines and CRLF endings", async () => {
    const { report, text } = await derive('contoso-toaster-007\r\n\n  contoso-heatpump-088  \n');
    expect(text).toBe(
      'contoso-toaster-007 NXZgydIn9ntUpXfBsWFfaxJqAYVfgGQsshvA5GboGJI=\n' +
        'contoso-heatpump-088 NI9dUEI2tga168Qi1U/HKuMmFHewrvaqI1MPTEU1A5w=\n',
    );
    expect(report).toEqual({ derived: 2, invalid: 0 });
  });

  it('trims ASCII and Unicode blanks around an id (tab, no-break space, em space, BOM), in CR-free chunks too', async () => {
    const { report, text } = await derive('\tcontoso-toaster-007\u00a0\n\u2003contoso-heatpump-088\ufeff\n\u00a0\n');
    expect(text).toBe(
      'contoso-toaster-007 NXZgydIn9ntUpXfBsWFfaxJqAYVfgGQsshvA5GboGJI=\n' +
        'contoso-heatpump-088 NI9dUEI2tga168Qi1U/HKuMmFHewrvaqI1MPTEU1A5w=\n',
    );
    expect(report).toEqual({ derived: 2, invalid: 0 });
  });

  it('prints one JSON object per line with --json', async () => {
    const { text } = await derive('contoso-toaster-007\n', true);
    expect(JSON.parse(text)).toEqual({
      registrationId: 'contoso-toaster-007',
      derivedKey: 'NXZgydIn9ntUpXfBsWFfaxJqAYVfgGQsshvA5GboGJI=',
    });
  });

  it('reports invalid ids with their line number and keeps going', async () => {
    const { report, text, invalid } = await derive('good-1\nbad id\ngood-2\n');
    expect(report).toEqual({ derived: 2, invalid: 1 });
    expect(invalid[0]?.[0]).toBe(2);
    expect(invalid[0]?.[1]).toContain('may only contain');
    expect(
      text
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(' ')[0]),
    ).toEqual(['good-1', 'good-2']);
  });

  it('streams many ids through chunked writes, in order', async () => {
    const ids = Array.from({ length: 20_000 }, (_, i) => `contoso-toaster-${i}`);
    const { report, text } = await derive(`${ids.join('\n')}\n`);
    const lines = text.split('\n').filter(Boolean);
    expect(report.derived).toBe(20_000);
    expect(lines).toHaveLength(20_000);
    expect(lines[12_345]).toBe(formatDerivedKey(ids[12_345]!, deriveDeviceKey(GROUP_KEY, ids[12_345]!), false).trim());
  });

  it('splits lines as readline does (LF, CRLF, lone CR), whatever the chunk boundaries', async () => {
    const input = 'good-1\r\nbad 1\rgood-2\r\r\n\nbad\u00e9\n  \ngood-3\rbad 2';
    const expected: Array<[number, string]> = [];
    let n = 0;
    for await (const raw of createInterface({ input: Readable.from([input]), crlfDelay: Number.POSITIVE_INFINITY })) {
      n += 1;
      if (raw.trim() !== '' && raw.trim().startsWith('bad')) expected.push([n, raw.trim()]);
    }
    const bytes = Buffer.from(input, 'utf8');
    for (let cut = 1; cut < bytes.length; cut++) {
      const invalid: Array<[number, string]> = [];
      const output = new PassThrough();
      const chunks: string[] = [];
      output.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
      const report = await deriveKeysFromLines(Readable.from([bytes.subarray(0, cut), bytes.subarray(cut)]), output, {
        groupKey: GROUP_KEY,
        onInvalid: (line, problem) => invalid.push([line, problem]),
      });
      expect(report).toEqual({ derived: 3, invalid: 3 });
      expect(invalid.map(([line, problem]) => [line, problem.match(/"(.*)"/)?.[1]])).toEqual(expected);
      expect(
        chunks
          .join('')
          .split('\n')
          .filter(Boolean)
          .map((l) => l.split(' ')[0]),
      ).toEqual(['good-1', 'good-2', 'good-3']);
    }
  });

  it('reports an over-long id, a bad id and blank lines by line number across clean and unclean chunks', async () => {
    const lines = Array.from({ length: 3_000 }, (_, i) => `contoso-toaster-${i}`);
    lines[999] = 'x'.repeat(129); // only its length is wrong: a chunk's one-regex check lets it through
    lines[1_999] = 'x'.repeat(128); // the longest valid id
    lines[2_499] = 'bad id';
    lines[2_799] = '';
    const input = `${lines.join('\n')}\n`;
    for (const size of [input.length, 65_536, 7_001, 997]) {
      const chunks: string[] = [];
      for (let i = 0; i < input.length; i += size) chunks.push(input.slice(i, i + size));
      const output = new PassThrough();
      const out: string[] = [];
      output.on('data', (c: Buffer) => out.push(c.toString('utf8')));
      const invalid: Array<[number, string]> = [];
      const report = await deriveKeysFromLines(Readable.from(chunks), output, {
        groupKey: GROUP_KEY,
        onInvalid: (line, problem) => invalid.push([line, problem]),
      });
      expect(report, `chunks of ${size}`).toEqual({ derived: 2_997, invalid: 2 });
      expect(invalid.map(([line]) => line)).toEqual([1_000, 2_500]);
      expect(invalid[0]?.[1]).toContain('at most 128');
      expect(invalid[1]?.[1]).toContain('may only contain');
      const derived = out.join('').split('\n').filter(Boolean);
      expect(derived[1_998]).toBe(`${'x'.repeat(128)} ${deriveDeviceKey(GROUP_KEY, 'x'.repeat(128))}`);
      expect(derived.at(-1)).toBe(`contoso-toaster-2999 ${deriveDeviceKey(GROUP_KEY, 'contoso-toaster-2999')}`);
    }
  });

  it('rejects an invalid group key before reading', async () => {
    await expect(
      deriveKeysFromLines(Readable.from(['x\n']), new PassThrough(), { groupKey: 'not-base64' }),
    ).rejects.toThrow(/groupKey is not valid base64/);
  });
});
