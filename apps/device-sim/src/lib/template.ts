import { registrationIdProblem } from '@dpskit/contracts/keys';
import { InvalidOptionError } from './errors.js';
import type { Named } from './inputs.js';

/** A registration-id template such as `contoso-toaster-{n}` or `contoso-toaster-{n:4}` (zero-padded). */
export interface RegistrationIdTemplate {
  source: string;
  parts: ReadonlyArray<string | { width: number }>;
}

export type TemplateParse = { ok: true; value: RegistrationIdTemplate } | { ok: false; message: string };

const PLACEHOLDER = /\{([^{}]*)\}/g;
const MAX_WIDTH = 16;

export function parseTemplate(source: string): TemplateParse {
  const parts: Array<string | { width: number }> = [];
  let last = 0;
  let placeholders = 0;
  for (const match of source.matchAll(PLACEHOLDER)) {
    const inner = match[1] ?? '';
    const m = /^n(?::(\d+))?$/.exec(inner);
    if (!m) {
      return {
        ok: false,
        message: `registration id template "${source}" has an unknown placeholder {${inner}}; use {n} for the device number or {n:4} for it zero-padded to 4 digits`,
      };
    }
    const width = m[1] === undefined ? 0 : Number(m[1]);
    if (width > MAX_WIDTH) {
      return {
        ok: false,
        message: `registration id template "${source}": {n:${m[1]}} pads too wide; at most {n:${MAX_WIDTH}}`,
      };
    }
    parts.push(source.slice(last, match.index));
    parts.push({ width });
    last = match.index + match[0].length;
    placeholders += 1;
  }
  parts.push(source.slice(last));
  const literal = parts.filter((p): p is string => typeof p === 'string').join('');
  if (literal.includes('{') || literal.includes('}')) {
    return { ok: false, message: `registration id template "${source}" has an unmatched { or }` };
  }
  if (placeholders === 0) {
    return {
      ok: false,
      message: `registration id template "${source}" has no {n}, so every device would get the same registration id; add {n}, e.g. "${source}-{n}"`,
    };
  }
  return { ok: true, value: { source, parts: parts.filter((p) => p !== '') } };
}

export function expandTemplate(template: RegistrationIdTemplate, n: number): string {
  let out = '';
  for (const part of template.parts) {
    out += typeof part === 'string' ? part : String(n).padStart(part.width, '0');
  }
  return out;
}

/**
 * Device `index` (0-based) of a fleet: templates take turns (round-robin), and each template numbers
 * its own devices from `start`, so two templates give toaster-1, heatpump-1, toaster-2, heatpump-2, ...
 */
export function fleetDevice(
  templates: readonly RegistrationIdTemplate[],
  index: number,
  start: number,
): { registrationId: string; template: RegistrationIdTemplate; n: number } {
  const template = templates[index % templates.length];
  if (!template) throw new RangeError('fleetDevice needs at least one template');
  const n = start + Math.floor(index / templates.length);
  return { registrationId: expandTemplate(template, n), template, n };
}

/**
 * Checks every id a fleet would produce without expanding them all: within one template only the
 * number's digit count changes, so the first and last ids of each template cover all cases.
 */
export function fleetTemplatesProblem(
  templates: readonly RegistrationIdTemplate[],
  count: number,
  start: number,
): string | null {
  if (templates.length === 0) return 'at least one registration id template is needed';
  for (let j = 0; j < templates.length && j < count; j++) {
    const template = templates[j]!;
    const devices = Math.ceil((count - j) / templates.length);
    for (const n of [start, start + devices - 1]) {
      const id = expandTemplate(template, n);
      const problem = registrationIdProblem(id);
      if (problem) return `registration id template "${template.source}" gives "${id}": ${problem}`;
    }
  }
  const sources = new Set(templates.map((t) => t.source));
  if (sources.size !== templates.length) return 'the same registration id template is given twice';
  return null;
}

/** Templates from one string or several, each possibly a comma list; throws `InvalidOptionError` naming `field`. */
export function parseTemplates(
  input: string | readonly string[],
  field = 'registrationIdTemplates',
): RegistrationIdTemplate[] {
  const sources = (typeof input === 'string' ? [input] : [...input])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (sources.length === 0) {
    throw new InvalidOptionError(field, 'give a registration id template such as contoso-toaster-{n}');
  }
  return sources.map((source) => {
    const parsed = parseTemplate(source);
    if (!parsed.ok) throw new InvalidOptionError(field, parsed.message);
    return parsed.value;
  });
}

/** The templates of a fleet of `count` devices numbered from `start`, every id they give checked. */
export function checkFleetTemplates(
  input: Named<string | readonly string[]>,
  count: number,
  start: number,
): RegistrationIdTemplate[] {
  const templates = parseTemplates(input.value, input.field);
  const problem = fleetTemplatesProblem(templates, count, start);
  if (problem) throw new InvalidOptionError(input.field, problem);
  return templates;
}
