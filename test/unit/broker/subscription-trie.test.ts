import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { SubscriptionTrie, type TrieSubscription } from '../../../broker/router/subscription-trie.js';
import { topicMatches } from '../../../protocol/topic.js';

// ---------------------------------------------------------------------------------------------------------------
// Helpers

function makeSub(clientId: string, filter: string, group?: string): TrieSubscription {
  return group === undefined ? { clientId, filter } : { clientId, filter: `$share/${group}/${filter}`, shareGroup: group };
}

function subscribe(trie: SubscriptionTrie, clientId: string, filter: string, group?: string): TrieSubscription {
  const sub = makeSub(clientId, filter, group);
  trie.add(filter, group, sub);
  return sub;
}

/** Strips the $share prefix from a subscription's full filter (the trie path). */
function pathOf(sub: TrieSubscription): string {
  return sub.shareGroup === undefined ? sub.filter : sub.filter.slice(`$share/${sub.shareGroup}/`.length);
}

/** Key of one (client, group, filter) entry. */
function key(clientId: string, group: string | undefined, filter: string): string {
  return `${clientId}|${group ?? '-'}|${filter}`;
}

interface MatchResult {
  /** Keys of everything reported: each non-shared sub, and every member of each reported shared group. */
  keys: string[];
  /** Non-shared subs in report order. */
  subs: TrieSubscription[];
  /** (group, filter) pairs in report order, with a snapshot of the members. */
  shared: { group: string; filter: string; members: Map<string, TrieSubscription> }[];
}

function runMatch(trie: SubscriptionTrie, topic: string): MatchResult {
  const result: MatchResult = { keys: [], subs: [], shared: [] };
  trie.match(
    topic,
    (sub) => {
      result.subs.push(sub);
      result.keys.push(key(sub.clientId, undefined, sub.filter));
    },
    (group, filter, members) => {
      result.shared.push({ group, filter, members: new Map(members) });
      for (const [clientId, sub] of members) {
        // The members map is keyed by client id and holds what was added under this group and filter.
        expect(sub.clientId).toBe(clientId);
        expect(sub.shareGroup).toBe(group);
        expect(pathOf(sub)).toBe(filter);
        result.keys.push(key(clientId, group, filter));
      }
    },
  );
  return result;
}

/** What topicMatches says should be reported, over every entry in the trie. */
function oracle(entries: Iterable<{ filter: string; group?: string; sub: TrieSubscription }>, topic: string): string[] {
  const out: string[] = [];
  for (const e of entries) if (topicMatches(e.filter, topic)) out.push(key(e.sub.clientId, e.group, e.filter));
  return out.sort();
}

function sorted(a: string[]): string[] {
  return [...a].sort();
}

function entryKeys(trie: SubscriptionTrie): string[] {
  return sorted([...trie.entries()].map((e) => key(e.sub.clientId, e.group, e.filter)));
}

// ---------------------------------------------------------------------------------------------------------------
// Table-driven matching

// [filter, topic, matches]
const CASES: [string, string, boolean][] = [
  // literal levels
  ['a/b', 'a/b', true],
  ['a/b', 'a', false],
  ['a', 'a/b', false],
  ['a/b', 'a/c', false],
  ['a/b', 'ab', false],
  ['ab', 'a/b', false],
  // '#' alone
  ['#', 'a', true],
  ['#', 'a/b/c', true],
  ['#', '/', true],
  ['#', '/a', true],
  ['#', 'a/', true],
  // '+' alone
  ['+', 'a', true],
  ['+', 'a/b', false],
  ['+', '/', false],
  ['+', 'a/', false],
  // '#' matches the parent level
  ['a/#', 'a', true],
  ['a/#', 'a/', true],
  ['a/#', 'a/b', true],
  ['a/#', 'a/b/c', true],
  ['a/#', 'ab', false],
  ['a/#', 'b', false],
  ['a/b/#', 'a', false],
  ['a/+/#', 'a/b', true],
  ['a/+/#', 'a', false],
  ['+/#', 'a', true],
  ['sport/tennis/player1/#', 'sport/tennis/player1', true],
  ['sport/tennis/player1/#', 'sport/tennis/player1/ranking', true],
  ['sport/tennis/player1/#', 'sport/tennis/player1/score/wimbledon', true],
  ['sport/#', 'sport', true],
  // '+'
  ['a/+', 'a/b', true],
  ['a/+', 'a/', true],
  ['a/+', 'a', false],
  ['a/+', 'a/b/c', false],
  ['+/b', 'a/b', true],
  ['+/+', 'a/b', true],
  ['+/+', 'a', false],
  ['sport/+/player1', 'sport/tennis/player1', true],
  ['sport/+', 'sport', false],
  ['sport/+', 'sport/', true],
  // empty levels
  ['/', '/', true],
  ['/', 'a', false],
  ['+/+', '/', true],
  ['/+', '/a', true],
  ['/+', 'a', false],
  ['+/a', '/a', true],
  ['/#', '/a', true],
  ['/#', '/', true],
  ['/#', 'a', false],
  ['a//b', 'a//b', true],
  ['a//b', 'a/b', false],
  ['a/b', 'a//b', false],
  ['a/+/b', 'a//b', true],
  ['a/+/b', 'a/b', false],
  ['a/', 'a/', true],
  ['a/', 'a', false],
  ['a', 'a/', false],
  ['a//', 'a//', true],
  ['a//', 'a/', false],
  ['a/+/+', 'a//', true],
  // [MQTT-4.7.2-1]: '$' topics are not matched by a leading wildcard
  ['#', '$SYS', false],
  ['#', '$SYS/broker/uptime', false],
  ['+', '$SYS', false],
  ['+/#', '$SYS/a', false],
  ['+/monitor/Clients', '$SYS/monitor/Clients', false],
  ['$SYS/monitor/+', '$SYS/monitor/Clients', true],
  ['$SYS/#', '$SYS', true],
  ['$SYS/#', '$SYS/broker/uptime', true],
  ['$SYS/+', '$SYS/x', true],
  ['$SYS', '$SYS', true],
  ['$foo/bar', '$foo/bar', true],
  ['a/$SYS', 'a/$SYS', true],
  ['a/+', 'a/$SYS', true],
  ['a/#', 'a/$SYS', true],
  ['+/$SYS', 'a/$SYS', true],
  // '$' not at the start of the topic does not protect it
  ['#', 'a$', true],
  ['+', 'a$', true],
];

describe('SubscriptionTrie matching (table)', () => {
  it('the table agrees with topicMatches', () => {
    for (const [filter, topic, expected] of CASES) {
      expect(topicMatches(filter, topic), `${filter} vs ${topic}`).toBe(expected);
    }
  });

  it.each(CASES)('filter %j vs topic %j -> %s (alone in the trie)', (filter, topic, expected) => {
    const trie = new SubscriptionTrie();
    const sub = subscribe(trie, 'c1', filter);
    const result = runMatch(trie, topic);
    expect(result.subs).toEqual(expected ? [sub] : []);
    expect(result.shared).toEqual([]);
  });

  it.each(CASES)('shared filter %j vs topic %j -> %s', (filter, topic, expected) => {
    const trie = new SubscriptionTrie();
    subscribe(trie, 'c1', filter, 'g');
    const result = runMatch(trie, topic);
    expect(result.subs).toEqual([]);
    expect(result.shared.map((s) => [s.group, s.filter])).toEqual(expected ? [['g', filter]] : []);
  });

  it('all table filters in one trie: every topic gets exactly the matching filters', () => {
    const trie = new SubscriptionTrie();
    const filters = [...new Set(CASES.map(([f]) => f))];
    filters.forEach((f, i) => subscribe(trie, `c${i}`, f));
    const topics = [...new Set(CASES.map(([, t]) => t))];
    for (const topic of topics) {
      const result = runMatch(trie, topic);
      expect(result.keys.length, topic).toBe(new Set(result.keys).size); // nothing reported twice
      expect(sorted(result.keys), topic).toEqual(oracle(trie.entries(), topic));
    }
  });

  it('reports overlapping subscriptions of one client separately', () => {
    const trie = new SubscriptionTrie();
    const a = subscribe(trie, 'c1', 'a/+');
    const b = subscribe(trie, 'c1', 'a/#');
    const c = subscribe(trie, 'c1', '#');
    const d = subscribe(trie, 'c1', 'a/b');
    subscribe(trie, 'c1', 'a/c');
    const result = runMatch(trie, 'a/b');
    expect(result.subs).toHaveLength(4);
    expect(new Set(result.subs)).toEqual(new Set([a, b, c, d]));
  });

  it('reports every client on the same filter', () => {
    const trie = new SubscriptionTrie();
    const subs = ['c1', 'c2', 'c3'].map((c) => subscribe(trie, c, 'x/+/z'));
    expect(new Set(runMatch(trie, 'x/y/z').subs)).toEqual(new Set(subs));
    expect(runMatch(trie, 'x/y').subs).toEqual([]);
  });

  it('matches nothing in an empty trie', () => {
    const trie = new SubscriptionTrie();
    expect(runMatch(trie, 'a/b').keys).toEqual([]);
    expect(runMatch(trie, '$SYS').keys).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Shared subscriptions

describe('SubscriptionTrie shared subscriptions', () => {
  it('reports two groups on the same filter once each, with their members', () => {
    const trie = new SubscriptionTrie();
    const g1a = subscribe(trie, 'A', 'a/+', 'g1');
    const g1b = subscribe(trie, 'B', 'a/+', 'g1');
    const g2b = subscribe(trie, 'B', 'a/+', 'g2');
    const result = runMatch(trie, 'a/x');
    expect(result.subs).toEqual([]);
    expect(result.shared).toHaveLength(2);
    const byGroup = new Map(result.shared.map((s) => [s.group, s]));
    expect(byGroup.get('g1')!.filter).toBe('a/+');
    expect(byGroup.get('g1')!.members).toEqual(
      new Map([
        ['A', g1a],
        ['B', g1b],
      ]),
    );
    expect(byGroup.get('g2')!.filter).toBe('a/+');
    expect(byGroup.get('g2')!.members).toEqual(new Map([['B', g2b]]));
  });

  it('reports one group once per matching filter', () => {
    const trie = new SubscriptionTrie();
    subscribe(trie, 'A', 'a/+', 'g');
    subscribe(trie, 'B', 'a/#', 'g');
    subscribe(trie, 'C', 'a/b', 'g');
    const result = runMatch(trie, 'a/b');
    expect(result.shared.map((s) => `${s.group}:${s.filter}:${[...s.members.keys()].join(',')}`).sort()).toEqual([
      'g:a/#:B',
      'g:a/+:A',
      'g:a/b:C',
    ]);
  });

  it('keeps shared and non-shared subscriptions of the same client apart', () => {
    const trie = new SubscriptionTrie();
    const plain = subscribe(trie, 'A', 'a/b');
    const shared = subscribe(trie, 'A', 'a/b', 'g');
    expect(trie.size).toBe(2);
    const result = runMatch(trie, 'a/b');
    expect(result.subs).toEqual([plain]);
    expect(result.shared).toEqual([{ group: 'g', filter: 'a/b', members: new Map([['A', shared]]) }]);
  });

  it("hands over the members map live and read-only (it reflects later adds)", () => {
    const trie = new SubscriptionTrie();
    subscribe(trie, 'A', 'a', 'g');
    let seen: ReadonlyMap<string, TrieSubscription> | undefined;
    trie.match('a', () => {}, (_g, _f, members) => (seen = members));
    subscribe(trie, 'B', 'a', 'g');
    expect([...seen!.keys()].sort()).toEqual(['A', 'B']);
  });

  it('applies [MQTT-4.7.2-1] to shared filters too', () => {
    const trie = new SubscriptionTrie();
    subscribe(trie, 'A', '#', 'g');
    subscribe(trie, 'A', '+/x', 'g');
    subscribe(trie, 'A', '$SYS/#', 'g');
    expect(runMatch(trie, '$SYS/x').shared.map((s) => s.filter)).toEqual(['$SYS/#']);
    expect(runMatch(trie, 'a/x').shared.map((s) => s.filter).sort()).toEqual(['#', '+/x']);
  });

  it('removing one member keeps the group; removing the last drops it', () => {
    const trie = new SubscriptionTrie();
    subscribe(trie, 'A', 'a', 'g');
    const b = subscribe(trie, 'B', 'a', 'g');
    expect(trie.remove('a', 'g', 'A')).toBeDefined();
    expect(runMatch(trie, 'a').shared).toEqual([{ group: 'g', filter: 'a', members: new Map([['B', b]]) }]);
    expect(trie.remove('a', 'g', 'B')).toBe(b);
    expect(runMatch(trie, 'a').shared).toEqual([]);
    expect(trie.nodeCount).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// add / remove / size / entries / pruning

describe('SubscriptionTrie add, remove, size and entries', () => {
  it('add returns undefined for a new entry and the previous value when replacing', () => {
    const trie = new SubscriptionTrie();
    const first = makeSub('A', 'a/+');
    const second = { ...makeSub('A', 'a/+'), marker: 2 };
    expect(trie.add('a/+', undefined, first)).toBeUndefined();
    expect(trie.size).toBe(1);
    expect(trie.add('a/+', undefined, second)).toBe(first);
    expect(trie.size).toBe(1);
    expect(runMatch(trie, 'a/b').subs).toEqual([second]);
    expect(runMatch(trie, 'a/b').subs[0]).toBe(second);
  });

  it('replaces per (client, group, filter): other groups, filters and clients are separate entries', () => {
    const trie = new SubscriptionTrie();
    subscribe(trie, 'A', 'a');
    subscribe(trie, 'A', 'a', 'g1');
    subscribe(trie, 'A', 'a', 'g2');
    subscribe(trie, 'A', 'a/#');
    subscribe(trie, 'B', 'a');
    expect(trie.size).toBe(5);
    const g1Again = makeSub('A', 'a', 'g1');
    expect(trie.add('a', 'g1', g1Again)).toBeDefined();
    expect(trie.size).toBe(5);
    const g1 = runMatch(trie, 'a').shared.find((s) => s.group === 'g1')!;
    expect(g1.members.get('A')).toBe(g1Again);
  });

  it('remove returns the removed value, or undefined when there is no such entry', () => {
    const trie = new SubscriptionTrie();
    const sub = subscribe(trie, 'A', 'a/b');
    subscribe(trie, 'A', 'x', 'g');
    expect(trie.remove('a/b', undefined, 'B')).toBeUndefined(); // other client
    expect(trie.remove('a/b', 'g', 'A')).toBeUndefined(); // shared vs non-shared
    expect(trie.remove('x', undefined, 'A')).toBeUndefined();
    expect(trie.remove('x', 'h', 'A')).toBeUndefined(); // other group
    expect(trie.remove('a', undefined, 'A')).toBeUndefined(); // intermediate node, no entry
    expect(trie.remove('a/b/c', undefined, 'A')).toBeUndefined(); // no such node
    expect(trie.remove('a/+', undefined, 'A')).toBeUndefined();
    expect(trie.remove('a/#', undefined, 'A')).toBeUndefined();
    expect(trie.size).toBe(2);
    expect(trie.remove('a/b', undefined, 'A')).toBe(sub);
    expect(trie.remove('a/b', undefined, 'A')).toBeUndefined();
    expect(trie.size).toBe(1);
    expect(runMatch(trie, 'a/b').keys).toEqual([]);
  });

  it('entries lists every entry with its path filter and group', () => {
    const trie = new SubscriptionTrie();
    const a = subscribe(trie, 'A', 'a/+');
    const b = subscribe(trie, 'B', 'a/+', 'g');
    const c = subscribe(trie, 'C', '#');
    const d = subscribe(trie, 'D', '/');
    const list = [...trie.entries()];
    expect(list).toHaveLength(4);
    expect(list).toEqual(
      expect.arrayContaining([
        { filter: 'a/+', sub: a },
        { filter: 'a/+', group: 'g', sub: b },
        { filter: '#', sub: c },
        { filter: '/', sub: d },
      ]),
    );
    expect(list.find((e) => e.sub === a)).not.toHaveProperty('group');
    expect([...new SubscriptionTrie().entries()]).toEqual([]);
  });

  it('rejects filters with misplaced wildcards', () => {
    const trie = new SubscriptionTrie();
    for (const bad of ['', 'a/#/b', '#/a', 'a#', 'a+', '+a/b', 'a/b+', '##', '++']) {
      expect(() => trie.add(bad, undefined, makeSub('A', bad)), bad).toThrow(RangeError);
    }
    expect(trie.size).toBe(0);
    expect(trie.nodeCount).toBe(0);
  });

  it('works with a broker-specific subscription type', () => {
    interface BrokerSub {
      clientId: string;
      qos: 0 | 1 | 2;
    }
    const trie = new SubscriptionTrie<BrokerSub>();
    trie.add('a/#', undefined, { clientId: 'A', qos: 1 });
    const qos: number[] = [];
    trie.match('a/b', (s) => qos.push(s.qos), () => {});
    expect(qos).toEqual([1]);
  });
});

describe('SubscriptionTrie pruning', () => {
  it('counts nodes per level, sharing prefixes', () => {
    const trie = new SubscriptionTrie();
    expect(trie.nodeCount).toBe(0);
    subscribe(trie, 'A', 'a/b/c');
    expect(trie.nodeCount).toBe(3);
    subscribe(trie, 'A', 'a/b');
    subscribe(trie, 'B', 'a/b/c');
    expect(trie.nodeCount).toBe(3);
    subscribe(trie, 'A', 'a/+/#');
    expect(trie.nodeCount).toBe(5);
  });

  it('prunes only nodes left with nothing', () => {
    const trie = new SubscriptionTrie();
    subscribe(trie, 'A', 'a/b/c');
    subscribe(trie, 'A', 'a/b');
    subscribe(trie, 'A', 'a/+/#', 'g');
    expect(trie.nodeCount).toBe(5);
    trie.remove('a/b/c', undefined, 'A');
    expect(trie.nodeCount).toBe(4); // a, a/b, a/+, a/+/#
    trie.remove('a/+/#', 'g', 'A');
    expect(trie.nodeCount).toBe(2); // a, a/b
    trie.remove('a/b', undefined, 'A');
    expect(trie.nodeCount).toBe(0);
    expect(trie.size).toBe(0);
  });

  it('keeps an intermediate node that still has a subscription when its child goes', () => {
    const trie = new SubscriptionTrie();
    const parent = subscribe(trie, 'A', 'a');
    subscribe(trie, 'A', 'a/#');
    trie.remove('a/#', undefined, 'A');
    expect(trie.nodeCount).toBe(1);
    expect(runMatch(trie, 'a').subs).toEqual([parent]);
  });

  it('does not leak over many add/remove cycles', () => {
    const trie = new SubscriptionTrie();
    const filters = ['a/b/c', 'a/+/c', '#', '+', 'a//b', '/', '$SYS/#', 'x/y/z/w/#'];
    subscribe(trie, 'keep', 'k/k');
    for (let round = 0; round < 200; round++) {
      for (const [i, f] of filters.entries()) subscribe(trie, `c${round % 7}`, f, i % 2 === 0 ? undefined : `g${round % 3}`);
      for (const [i, f] of filters.entries()) {
        expect(trie.remove(f, i % 2 === 0 ? undefined : `g${round % 3}`, `c${round % 7}`)).toBeDefined();
      }
    }
    expect(trie.size).toBe(1);
    expect(trie.nodeCount).toBe(2);
    trie.remove('k/k', undefined, 'keep');
    expect(trie.nodeCount).toBe(0);
  });
});

describe('SubscriptionTrie robustness', () => {
  it('handles a filter with 65535 levels without overflowing the stack', () => {
    const trie = new SubscriptionTrie();
    const deep = '/'.repeat(65_534); // 65535 bytes, 65535 empty levels
    const deepSub = subscribe(trie, 'A', deep);
    const deepHash = subscribe(trie, 'A', `${'/'.repeat(65_532)}/#`);
    const all = subscribe(trie, 'A', '#');
    expect(new Set(runMatch(trie, deep).subs)).toEqual(new Set([deepSub, deepHash, all]));
    expect(runMatch(trie, '/'.repeat(100)).subs).toEqual([all]);
    expect(trie.nodeCount).toBe(65_535 + 2); // the deep chain, its "#" leaf and the root "#"
    trie.remove(deep, undefined, 'A');
    trie.remove(`${'/'.repeat(65_532)}/#`, undefined, 'A');
    expect(trie.nodeCount).toBe(1);
  });

  it('allows match to be called from a callback', () => {
    const trie = new SubscriptionTrie();
    subscribe(trie, 'A', 'a/#');
    subscribe(trie, 'B', 'a/b');
    subscribe(trie, 'C', 'x/+');
    subscribe(trie, 'D', '+/b');
    const outer: string[] = [];
    const inner: string[] = [];
    trie.match(
      'a/b',
      (s) => {
        outer.push(s.clientId);
        trie.match('x/y', (t) => inner.push(t.clientId), () => {});
      },
      () => {},
    );
    expect(outer.sort()).toEqual(['A', 'B', 'D']);
    expect(inner).toEqual(['C', 'C', 'C']);
  });

  it('recovers when a callback throws', () => {
    const trie = new SubscriptionTrie();
    subscribe(trie, 'A', 'a/+');
    subscribe(trie, 'B', 'a/#');
    subscribe(trie, 'C', '+/b');
    expect(() =>
      trie.match(
        'a/b',
        () => {
          throw new Error('boom');
        },
        () => {},
      ),
    ).toThrow('boom');
    expect(sorted(runMatch(trie, 'a/b').keys)).toEqual(oracle(trie.entries(), 'a/b'));
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Property: the trie agrees with topicMatches over all entries, through random adds and removals

describe('SubscriptionTrie property: agrees with topicMatches', () => {
  const topicLevel = fc.constantFrom('', '$SYS', 'a', 'b', 'c');
  const topicArb = fc.array(topicLevel, { minLength: 1, maxLength: 4 }).map((l) => l.join('/'));
  const filterArb = fc
    .tuple(fc.array(fc.constantFrom('', '$SYS', 'a', 'b', 'c', '+'), { minLength: 0, maxLength: 4 }), fc.boolean())
    .map(([levels, hash]) => (hash ? [...levels, '#'] : levels).join('/'))
    .filter((filter) => filter.length > 0); // [] and [''] both give the (invalid) empty filter
  const clientArb = fc.constantFrom('c1', 'c2', 'c3');
  const groupArb = fc.constantFrom<string | undefined>(undefined, undefined, 'g1', 'g2');
  const entryArb = fc.record({ clientId: clientArb, group: groupArb, filter: filterArb });

  type Op = { kind: 'add'; clientId: string; group: string | undefined; filter: string } | { kind: 'remove'; index: number };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 3, arbitrary: entryArb.map((e) => ({ kind: 'add' as const, ...e })) },
    { weight: 2, arbitrary: fc.nat({ max: 1000 }).map((index) => ({ kind: 'remove' as const, index })) },
  );

  function check(trie: SubscriptionTrie, model: Map<string, TrieSubscription>, topics: string[]): void {
    expect(trie.size).toBe(model.size);
    expect(entryKeys(trie)).toEqual(sorted([...model.keys()]));
    const modelEntries = [...model.values()].map((sub) => ({ filter: pathOf(sub), group: sub.shareGroup, sub }));
    for (const topic of topics) {
      const result = runMatch(trie, topic);
      // Each (group, filter) reported at most once, each non-shared sub at most once.
      const pairs = result.shared.map((s) => `${s.group}|${s.filter}`);
      expect(new Set(pairs).size).toBe(pairs.length);
      expect(new Set(result.keys).size).toBe(result.keys.length);
      expect(sorted(result.keys)).toEqual(oracle(modelEntries, topic));
      // Reported objects are the ones stored.
      for (const sub of result.subs) expect(model.get(key(sub.clientId, undefined, sub.filter))).toBe(sub);
    }
  }

  it('matched (client, group, filter) set equals the topicMatches oracle, including after removals', () => {
    fc.assert(
      fc.property(
        fc.array(entryArb, { minLength: 0, maxLength: 25 }),
        fc.array(opArb, { minLength: 0, maxLength: 25 }),
        fc.array(topicArb, { minLength: 1, maxLength: 8 }),
        (initial, ops, topics) => {
          const trie = new SubscriptionTrie();
          const model = new Map<string, TrieSubscription>();
          const add = (clientId: string, group: string | undefined, filter: string): void => {
            const k = key(clientId, group, filter);
            const sub = makeSub(clientId, filter, group);
            expect(trie.add(filter, group, sub)).toBe(model.get(k));
            model.set(k, sub);
          };
          for (const e of initial) add(e.clientId, e.group, e.filter);
          check(trie, model, topics);

          for (const op of ops) {
            if (op.kind === 'add') {
              add(op.clientId, op.group, op.filter);
            } else if (model.size > 0) {
              const [k, sub] = [...model.entries()][op.index % model.size]!;
              expect(trie.remove(pathOf(sub), sub.shareGroup, sub.clientId)).toBe(sub);
              model.delete(k);
            }
          }
          check(trie, model, topics);

          // Removing everything leaves an empty trie with no nodes.
          for (const sub of model.values()) expect(trie.remove(pathOf(sub), sub.shareGroup, sub.clientId)).toBe(sub);
          expect(trie.size).toBe(0);
          expect(trie.nodeCount).toBe(0);
          expect([...trie.entries()]).toEqual([]);
          for (const topic of topics) expect(runMatch(trie, topic).keys).toEqual([]);
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('agrees with topicMatches for a single random filter and topic', () => {
    fc.assert(
      fc.property(filterArb, topicArb, (filter, topic) => {
        const trie = new SubscriptionTrie();
        subscribe(trie, 'A', filter);
        expect(runMatch(trie, topic).subs.length).toBe(topicMatches(filter, topic) ? 1 : 0);
      }),
      { numRuns: 2000 },
    );
  });
});
