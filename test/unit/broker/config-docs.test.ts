import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { renderBrokerOptionsMarkdown, renderReadmeOptionsTable } from '../../../broker/config-docs.js';
import { configDefaults, configKeys, flagName, parseConfigYaml } from '../../../broker/config.js';

const docPath = new URL('../../../docs/broker-options.md', import.meta.url);

const readmePath = new URL('../../../README.md', import.meta.url);
const START = '<!-- broker-options:start (generated from broker/config.ts; UPDATE_README=1 npx vitest run test/unit/broker/config-docs.test.ts) -->';
const END = '<!-- broker-options:end -->';

describe('README.md', () => {
  it('lists every broker option in the table between its broker-options markers', () => {
    const readme = readFileSync(readmePath, 'utf8');
    const start = readme.indexOf(START);
    const end = readme.indexOf(END);
    expect(start, `README.md lacks the marker ${START}`).toBeGreaterThanOrEqual(0);
    expect(end).toBeGreaterThan(start);
    const current = readme.slice(start + START.length, end).trim();
    const wanted = renderReadmeOptionsTable();
    if (current !== wanted && process.env['UPDATE_README'] === '1') {
      writeFileSync(readmePath, readme.slice(0, start + START.length) + '\n' + wanted + '\n' + readme.slice(end));
      return;
    }
    expect(current).toBe(wanted);
  });
});

describe('docs/broker-options.md', () => {
  it('is the table rendered from broker/config.ts (regenerate with `npx vitest run test/unit/broker/config-docs.test.ts -u`)', async () => {
    await expect(renderBrokerOptionsMarkdown()).toMatchFileSnapshot('../../../docs/broker-options.md');
  });

  it('has a row for every option, with its YAML key and flag', () => {
    const doc = readFileSync(docPath, 'utf8');
    for (const key of configKeys) expect(doc, key).toContain(`| \`${key}\` | \`--${flagName(key)}\` |`);
  });

  it('its example broker.yaml is valid and sets every option to its default', () => {
    const yaml = /```yaml\n([\s\S]*?)```/.exec(renderBrokerOptionsMarkdown())?.[1];
    expect(yaml).toBeDefined();
    expect(parseConfigYaml(yaml!, 'docs example')).toEqual(configDefaults);
  });
});
