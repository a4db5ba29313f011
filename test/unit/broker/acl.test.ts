import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Acl, AclFileError, filterCovers, substitute } from '../../../broker/auth/acl.js';
import { topicMatches } from '../../../protocol/topic.js';

function aclError(text: string): string[] {
  try {
    Acl.parse(text, 'acl.conf');
  } catch (err) {
    if (err instanceof AclFileError) return err.message.split('\n');
    throw err;
  }
  throw new Error('expected an AclFileError, but the file was accepted');
}

const sample = [
  '# global section: everyone',
  'read public/#',
  'pattern readwrite devices/%c/#',
  'pattern read users/%u/inbox',
  '',
  'user alice',
  'readwrite alice/#',
  'read sensors/+/temperature',
  'read $SYS/#',
  '',
  'user bob',
  'write sensors/bob/+',
  '  # indented comment',
  'user alice',
  'write shared/alice',
].join('\n');

describe('ACL file parsing', () => {
  it('reads the global section, user sections (repeated ones add up) and pattern rules', () => {
    const acl = Acl.parse(sample, 'acl.conf');
    expect(acl.global.map((r) => [r.access, r.filter, r.pattern, r.line])).toEqual([
      ['read', 'public/#', false, 2],
      ['readwrite', 'devices/%c/#', true, 3],
      ['read', 'users/%u/inbox', true, 4],
    ]);
    expect(acl.users.get('alice')!.map((r) => `${r.access} ${r.filter}`)).toEqual([
      'readwrite alice/#', 'read sensors/+/temperature', 'read $SYS/#', 'write shared/alice',
    ]);
    expect(acl.users.get('bob')!.map((r) => `${r.access} ${r.filter}`)).toEqual(['write sensors/bob/+']);
    expect(acl.ruleCount).toBe(8);
  });

  it('user names and filters may contain spaces', () => {
    const acl = Acl.parse('user Zoë Smith\nread rooms/living room/#\n', 'acl.conf');
    expect(acl.users.get('Zoë Smith')![0]!.filter).toBe('rooms/living room/#');
  });

  it('reports every bad line with file, line and the fix', () => {
    expect(aclError([
      'topic read a/b',
      'read',
      'write a/#/b',
      'pattern read',
      'pattern delete a/%u',
      'user',
      'readwrite $share/g/a',
      'read a+',
    ].join('\n'))).toEqual([
      `acl.conf:1: expected 'user NAME', 'read|write|readwrite FILTER' or 'pattern read|write|readwrite FILTER', got "topic read a/b"`,
      'acl.conf:2: a topic filter is missing',
      "acl.conf:3: 'a/#/b': '#' must be the last level",
      'acl.conf:4: a topic filter is missing',
      'acl.conf:5: expected read, write or readwrite after \'pattern\', got "delete"',
      'acl.conf:6: \'user\' needs a user name ("user alice")',
      "acl.conf:7: '$share/g/a': a rule names topics, not shared subscriptions; write the filter after $share/{group}/",
      "acl.conf:8: 'a+': '+' must occupy an entire level",
    ]);
  });

  it('load() names a missing file', () => {
    expect(() => Acl.load('/nonexistent/acl.conf')).toThrow('/nonexistent/acl.conf: cannot read the ACL file: it does not exist');
  });
});

describe('permissions', () => {
  const acl = Acl.parse(sample, 'acl.conf');

  it('a user gets the global rules and their own', () => {
    const alice = acl.permissionsFor({ username: 'alice', clientId: 'a1' });
    expect(alice.canRead('public/news')).toBe(true);
    expect(alice.canRead('alice/x/y')).toBe(true);
    expect(alice.canWrite('alice/x')).toBe(true);
    expect(alice.canRead('sensors/kitchen/temperature')).toBe(true);
    expect(alice.canWrite('sensors/kitchen/temperature')).toBe(false);
    expect(alice.canWrite('shared/alice')).toBe(true);
    expect(alice.canRead('shared/alice')).toBe(false);
    expect(alice.canRead('bob/x')).toBe(false);
    expect(alice.canWrite('public/news')).toBe(false);
  });

  it('anonymous clients and unknown users get the global rules only', () => {
    for (const identity of [{ clientId: 'anon' }, { username: 'mallory', clientId: 'm' }]) {
      const p = acl.permissionsFor(identity);
      expect(p.canRead('public/news')).toBe(true);
      expect(p.canRead('alice/x')).toBe(false);
      expect(p.canWrite('alice/x')).toBe(false);
    }
  });

  it('pattern rules substitute the client id and user name', () => {
    const p = acl.permissionsFor({ username: 'bob', clientId: 'dev-7' });
    expect(p.canWrite('devices/dev-7/state')).toBe(true);
    expect(p.canRead('devices/dev-7/cmd')).toBe(true);
    expect(p.canWrite('devices/dev-8/state')).toBe(false);
    expect(p.canRead('users/bob/inbox')).toBe(true);
    expect(p.canRead('users/alice/inbox')).toBe(false);
  });

  it('a %u pattern grants nothing to an anonymous client', () => {
    const p = acl.permissionsFor({ clientId: 'c' });
    expect(p.read).not.toContain('users//inbox');
    expect(p.canRead('users//inbox')).toBe(false);
  });

  it.each([
    ['+', 'a wildcard level'],
    ['#', 'the multi-level wildcard'],
    ['x/y', 'an extra level'],
    ['a+', 'a plus inside'],
    ['', 'an empty value'],
    ['$SYS', 'a $ topic prefix'],
  ])('a client id or user name of %j (%s) matches nothing for the pattern', (value) => {
    const byClient = acl.permissionsFor({ username: 'u', clientId: value });
    expect(byClient.write.some((f) => f.startsWith('devices/'))).toBe(false);
    expect(byClient.canWrite(`devices/other/state`)).toBe(false);
    expect(byClient.canWrite(`devices/${value.replace(/[+#]/g, 'x')}/state`)).toBe(false);
    const byUser = acl.permissionsFor({ username: value, clientId: 'c' });
    expect(byUser.read.some((f) => f.startsWith('users/'))).toBe(false);
    expect(byUser.canRead('users/other/inbox')).toBe(false);
  });

  it('substitute() refuses unsafe values and only substitutes %u and %c', () => {
    expect(substitute('a/%u/%c/%x', { username: 'u', clientId: 'c' })).toBe('a/u/c/%x');
    expect(substitute('a/%u', { clientId: 'c' })).toBeUndefined();
    expect(substitute('a/%c', { clientId: 'x\u0000' })).toBeUndefined();
    expect(substitute('%c/#', { clientId: '$SYS' })).toBeUndefined();
    expect(substitute('a/b', { clientId: '#' })).toBe('a/b');
  });

  it("'#' and '+' rules do not grant $ topics; $SYS needs its own rule [MQTT-4.7.2-1]", () => {
    const everything = Acl.parse('read #\nwrite +/#\n', 'acl.conf').permissionsFor({ clientId: 'c' });
    expect(everything.canRead('a/b')).toBe(true);
    expect(everything.canRead('$SYS/broker/uptime')).toBe(false);
    expect(everything.canWrite('$SYS/broker/uptime')).toBe(false);
    expect(everything.canSubscribe('$SYS/#')).toBe(false);
    const alice = acl.permissionsFor({ username: 'alice', clientId: 'a' });
    expect(alice.canRead('$SYS/broker/uptime')).toBe(true);
    expect(alice.canSubscribe('$SYS/#')).toBe(true);
  });
});

describe('subscriptions: a filter is allowed only if one read rule covers every topic it can match', () => {
  it.each<[string, string, boolean]>([
    ['a/#', 'a/#', true],
    ['#', 'a/#', true],
    ['a/b', 'a/#', false],
    ['a/+', 'a/#', false],
    ['a/#', 'a', true],
    ['a/#', 'a/+/c', true],
    ['a/+', 'a/b', true],
    ['a/+', 'a/+', true],
    ['a/+', 'a/b/c', false],
    ['a/b', 'a/+', false],
    ['+/b', 'a/b', true],
    ['+/b', '+/+', false],
    ['+/+', '+/b', true],
    ['a/+/#', 'a/x', true],
    ['a/+/#', 'a', false],
    ['a/b', 'a/b/c', false],
    ['a/b/c', 'a/b', false],
    ['#', '#', true],
    ['#', '+', true],
    ['#', '$SYS/#', false],
    ['+/#', '$SYS/x', false],
    ['$SYS/#', '$SYS/broker/+', true],
    ['$SYS/#', '#', false],
    ['+', 'a/b', false],
    ['a//b', 'a/+/b', false],
    ['a/+/b', 'a//b', true],
  ])('rule %j covers %j: %s', (rule, filter, expected) => {
    expect(filterCovers(rule, filter)).toBe(expected);
  });

  it('$share/{group}/{filter} is checked on its inner filter', () => {
    const p = Acl.parse('read a/#\n', 'acl.conf').permissionsFor({ clientId: 'c' });
    expect(p.canSubscribe('$share/g/a/+')).toBe(true);
    expect(p.canSubscribe('$share/g/#')).toBe(false);
    expect(p.canSubscribe('$share/a/b')).toBe(false);
  });

  it('coverage is sound: whenever a rule covers a filter, every topic the filter matches is readable (property)', () => {
    const level = fc.constantFrom('a', 'b', '', '$x');
    const topic = fc.array(level, { minLength: 1, maxLength: 4 }).map((l) => l.join('/'));
    const filterLevels = fc.array(fc.constantFrom('a', 'b', '', '$x', '+'), { minLength: 1, maxLength: 4 });
    const filter = fc.tuple(filterLevels, fc.boolean()).map(([l, hash]) => (hash ? [...l, '#'] : l).join('/'))
      .chain((f) => fc.constantFrom(f, '#', '+/#'));
    fc.assert(fc.property(filter, filter, fc.array(topic, { minLength: 1, maxLength: 20 }), (rule, sub, topics) => {
      if (!filterCovers(rule, sub)) return;
      for (const t of topics) if (topicMatches(sub, t)) expect(topicMatches(rule, t), `${rule} covers ${sub} but not ${t}`).toBe(true);
    }), { numRuns: 2000 });
  });
});
