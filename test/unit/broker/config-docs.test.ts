import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderBrokerOptionsMarkdown } from '../../../broker/config-docs.js';
import { configDefaults, configKeys, flagName, parseConfigYaml } from '../../../broker/config.js';

const docPath = new URL('../../../docs/broker-options.md', import.meta.url);

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
