import { describe, expect, it } from 'vitest';
import {
  expandTemplate,
  fleetDevice,
  fleetTemplatesProblem,
  parseTemplate,
  type RegistrationIdTemplate,
} from './template.js';

function t(source: string): RegistrationIdTemplate {
  const r = parseTemplate(source);
  if (!r.ok) throw new Error(r.message);
  return r.value;
}

describe('parseTemplate / expandTemplate', () => {
  it('replaces {n} with the number', () => {
    expect(expandTemplate(t('contoso-toaster-{n}'), 7)).toBe('contoso-toaster-7');
    expect(expandTemplate(t('{n}-device'), 12)).toBe('12-device');
  });

  it('zero-pads {n:W}', () => {
    expect(expandTemplate(t('contoso-toaster-{n:3}'), 7)).toBe('contoso-toaster-007');
    expect(expandTemplate(t('contoso-toaster-{n:3}'), 1234)).toBe('contoso-toaster-1234');
  });

  it('allows several placeholders', () => {
    expect(expandTemplate(t('dev-{n}-{n:2}'), 5)).toBe('dev-5-05');
  });

  it('rejects a template without {n}', () => {
    const r = parseTemplate('contoso-toaster');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toContain('has no {n}');
  });

  it('rejects unknown placeholders and stray braces', () => {
    const unknown = parseTemplate('toaster-{id}');
    expect(unknown.ok).toBe(false);
    if (!unknown.ok) expect(unknown.message).toContain('unknown placeholder {id}');
    expect(parseTemplate('toaster-{n:x}').ok).toBe(false);
    expect(parseTemplate('toaster-{n}}').ok).toBe(false);
    expect(parseTemplate('toaster-{{n}').ok).toBe(false);
    expect(parseTemplate('toaster-{n:17}').ok).toBe(false);
  });
});

describe('fleetDevice', () => {
  it('numbers a single template from start', () => {
    const templates = [t('contoso-toaster-{n}')];
    expect([0, 1, 2].map((i) => fleetDevice(templates, i, 1).registrationId)).toEqual([
      'contoso-toaster-1',
      'contoso-toaster-2',
      'contoso-toaster-3',
    ]);
  });

  it('spreads devices round-robin over templates, each numbered on its own', () => {
    const templates = [t('contoso-toaster-{n:3}'), t('contoso-heatpump-{n:3}')];
    expect([0, 1, 2, 3, 4].map((i) => fleetDevice(templates, i, 7).registrationId)).toEqual([
      'contoso-toaster-007',
      'contoso-heatpump-007',
      'contoso-toaster-008',
      'contoso-heatpump-008',
      'contoso-toaster-009',
    ]);
  });
});

describe('fleetTemplatesProblem', () => {
  it('accepts valid templates', () => {
    expect(fleetTemplatesProblem([t('contoso-toaster-{n}')], 1000, 1)).toBeNull();
  });

  it('reports an id with characters DPS rejects, naming the template and the id', () => {
    const problem = fleetTemplatesProblem([t('contoso toaster {n}')], 3, 1);
    expect(problem).toContain('"contoso toaster {n}" gives "contoso toaster 1"');
  });

  it('reports ids that grow past 128 characters only at the end of the range', () => {
    const long = `${'a'.repeat(124)}-{n}`; // 125 chars + digits
    expect(fleetTemplatesProblem([t(long)], 99, 1)).toBeNull();
    expect(fleetTemplatesProblem([t(long)], 1000, 1)).toContain('at most 128');
  });

  it('rejects the same template twice', () => {
    expect(fleetTemplatesProblem([t('a-{n}'), t('a-{n}')], 4, 1)).toContain('twice');
  });
});
