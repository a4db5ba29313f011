/**
 * Topic, client-id and payload text templates: `pipeline/{segment}/pressure/{id}`. A template is parsed
 * and checked once, then rendered by concatenating its parts (no regex per message). `{{` and `}}` are
 * literal braces.
 *
 * Placeholders: `{id}` (client id), `{fleet}`, `{index}` (0-based device index in the fleet), `{sensor}`
 * (gateway logical sensor index, gateway publish only), `{target}` (the receiving device's client id,
 * consumer commands only) and the fleet's attribute names.
 */
import { createPrng, hashString } from './prng.js';
import type { FleetSpec } from './types.js';

export type TemplateVars = Record<string, string | number>;
export type RenderTemplate = (vars: TemplateVars) => string;

/** Placeholders the engine provides; attribute names must not reuse them. */
export const builtinPlaceholders = ['id', 'fleet', 'index', 'sensor', 'target'] as const;

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Where `{sensor}` and `{target}` are available, for the message when they are used elsewhere. */
const restrictedHints: Record<string, string> = {
  sensor: '{sensor} is only available in the publish topics and payloads of gateway fleets',
  target: '{target} is only available in consumers[].commands (topic and payload)',
  id: '{id} is the client id itself, so a client id template cannot use it',
};

type Part = { literal: string } | { name: string };

export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

/** Splits a template into literal text and placeholder names; throws TemplateError on bad syntax. */
function parse(text: string): Part[] {
  const parts: Part[] = [];
  let literal = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '{') {
      if (text[i + 1] === '{') {
        literal += '{';
        i++;
        continue;
      }
      const close = text.indexOf('}', i + 1);
      if (close < 0) throw new TemplateError(`unclosed '{' in ${JSON.stringify(text)}; close it with '}' or write '{{' for a literal brace`);
      const name = text.slice(i + 1, close).trim();
      if (!NAME.test(name)) throw new TemplateError(`${JSON.stringify(`{${text.slice(i + 1, close)}}`)} in ${JSON.stringify(text)} is not a placeholder; names are letters, digits and _ (write '{{' for a literal brace)`);
      if (literal !== '') parts.push({ literal });
      literal = '';
      parts.push({ name });
      i = close;
    } else if (ch === '}') {
      if (text[i + 1] === '}') {
        literal += '}';
        i++;
        continue;
      }
      throw new TemplateError(`unmatched '}' in ${JSON.stringify(text)}; write '}}' for a literal brace`);
    } else {
      literal += ch;
    }
  }
  if (literal !== '') parts.push({ literal });
  return parts;
}

/** The placeholder names a template uses, in order of first use; throws TemplateError on bad syntax. */
export function templatePlaceholders(text: string): string[] {
  const names: string[] = [];
  for (const part of parse(text)) if ('name' in part && !names.includes(part.name)) names.push(part.name);
  return names;
}

/** True when the text has at least one placeholder (and is a valid template). */
export function hasPlaceholders(text: string): boolean {
  try {
    return templatePlaceholders(text).length > 0;
  } catch {
    return text.includes('{');
  }
}

/**
 * Null when the template is valid and uses only allowed names; otherwise a message naming the unknown
 * placeholder and the available ones.
 */
export function templateProblem(text: string, allowedNames: readonly string[]): string | null {
  let names: string[];
  try {
    names = templatePlaceholders(text);
  } catch (err) {
    return (err as TemplateError).message;
  }
  for (const name of names) {
    if (allowedNames.includes(name)) continue;
    const available = allowedNames.map((n) => `{${n}}`).join(', ');
    const hint = restrictedHints[name];
    if (hint !== undefined) return `${hint}; available here: ${available}`;
    return `unknown placeholder {${name}}; available here: ${available}`;
  }
  return null;
}

/** Compiles a template once; the renderer throws if a placeholder has no value (an engine bug, not a user mistake). */
export function compileTemplate(text: string, allowedNames: readonly string[]): RenderTemplate {
  const problem = templateProblem(text, allowedNames);
  if (problem !== null) throw new TemplateError(problem);
  const parts = parse(text);
  if (parts.length === 0) return () => '';
  if (parts.length === 1 && 'literal' in parts[0]!) {
    const constant = parts[0].literal;
    return () => constant;
  }
  const literals: string[] = [];
  const names: Array<string | null> = [];
  for (const part of parts) {
    if ('literal' in part) {
      literals.push(part.literal);
      names.push(null);
    } else {
      literals.push('');
      names.push(part.name);
    }
  }
  return (vars) => {
    let out = '';
    for (let i = 0; i < literals.length; i++) {
      const name = names[i];
      if (name === null) {
        out += literals[i];
      } else {
        const value = vars[name];
        if (value === undefined) throw new TemplateError(`template ${JSON.stringify(text)}: no value for {${name}}`);
        out += value;
      }
    }
    return out;
  };
}

/**
 * The attribute values of device `index` of a fleet: `value` fixed, `cycle` round-robin by index,
 * `pick` seeded random per device, `range` a seeded integer in [min, max]. Deterministic in (seed, fleet
 * name, attribute name, index).
 */
export function resolveAttributes(fleet: Pick<FleetSpec, 'name' | 'attributes'>, index: number, seed: number): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  const fleetSalt = hashString(fleet.name);
  for (const [name, spec] of Object.entries(fleet.attributes)) {
    switch (spec.kind) {
      case 'value':
        out[name] = spec.value;
        break;
      case 'cycle':
        out[name] = spec.values[index % spec.values.length]!;
        break;
      case 'pick': {
        const random = createPrng(seed, fleetSalt, hashString(name), index);
        out[name] = spec.values[Math.floor(random() * spec.values.length)]!;
        break;
      }
      case 'range': {
        const random = createPrng(seed, fleetSalt, hashString(name), index);
        out[name] = spec.min + Math.floor(random() * (spec.max - spec.min + 1));
        break;
      }
    }
  }
  return out;
}
