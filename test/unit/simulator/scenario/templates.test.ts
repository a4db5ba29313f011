import { describe, expect, it } from 'vitest';
import { compileTemplate, resolveAttributes, TemplateError, templatePlaceholders, templateProblem } from '../../../../simulator/scenario/templates.js';
import type { FleetSpec } from '../../../../simulator/scenario/types.js';

describe('compileTemplate', () => {
  it('renders placeholders, literal text and escaped braces', () => {
    const render = compileTemplate('pipeline/{segment}/pressure/{id}', ['id', 'segment']);
    expect(render({ id: 'p-1', segment: 'north' })).toBe('pipeline/north/pressure/p-1');
    expect(compileTemplate('{{literal}} {index}', ['index'])({ index: 3 })).toBe('{literal} 3');
    expect(compileTemplate('plain', [])({})).toBe('plain');
  });

  it('refuses unknown placeholders, naming the available ones', () => {
    expect(() => compileTemplate('a/{segmnt}', ['id', 'segment'])).toThrow(new TemplateError('unknown placeholder {segmnt}; available here: {id}, {segment}'));
  });

  it('explains where {target} and {sensor} are available', () => {
    expect(templateProblem('a/{target}', ['id'])).toBe('{target} is only available in consumers[].commands (topic and payload); available here: {id}');
    expect(templateProblem('a/{sensor}', ['id'])).toBe('{sensor} is only available in the publish topics and payloads of gateway fleets; available here: {id}');
  });

  it('reports syntax errors', () => {
    expect(templateProblem('a/{id', ['id'])).toBe(`unclosed '{' in "a/{id"; close it with '}' or write '{{' for a literal brace`);
    expect(templateProblem('a/id}', ['id'])).toBe(`unmatched '}' in "a/id}"; write '}}' for a literal brace`);
    expect(templatePlaceholders('{a}/{b}/{a}')).toEqual(['a', 'b']);
  });
});

describe('resolveAttributes', () => {
  const fleet: Pick<FleetSpec, 'name' | 'attributes'> = {
    name: 'pressure',
    attributes: {
      segment: { kind: 'cycle', values: ['north', 'south', 'east'] },
      line: { kind: 'pick', values: ['a', 'b'] },
      zone: { kind: 'range', min: 1, max: 8 },
      site: { kind: 'value', value: 'plant-1' },
    },
  };

  it('cycles round-robin by index and keeps fixed values', () => {
    expect([0, 1, 2, 3].map((i) => resolveAttributes(fleet, i, 1).segment)).toEqual(['north', 'south', 'east', 'north']);
    expect(resolveAttributes(fleet, 5, 1).site).toBe('plant-1');
  });

  it('picks and ranges deterministically per (seed, device) and within bounds', () => {
    const a = Array.from({ length: 200 }, (_, i) => resolveAttributes(fleet, i, 42));
    const b = Array.from({ length: 200 }, (_, i) => resolveAttributes(fleet, i, 42));
    expect(a).toEqual(b);
    expect(new Set(a.map((x) => x.line))).toEqual(new Set(['a', 'b']));
    const zones = a.map((x) => x.zone as number);
    expect(Math.min(...zones)).toBe(1);
    expect(Math.max(...zones)).toBe(8);
    const other = Array.from({ length: 200 }, (_, i) => resolveAttributes(fleet, i, 43));
    expect(other.map((x) => x.zone)).not.toEqual(zones);
  });
});
