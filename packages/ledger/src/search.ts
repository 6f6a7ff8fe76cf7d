/** What a search hit points at. */
export interface SearchHit {
  kind: 'goal' | 'action';
  id: string;
  /** How it matched: the query is a prefix of its id, or every query word is in its text. */
  match: 'id-prefix' | 'text';
}

type DocKey = string;

const MIN_TOKEN = 2;
const ID_PREFIX_LENGTHS = [2, 3, 4] as const;
/** A query that looks like the start of an id: one run of id characters, as users paste from a listing. */
const ID_LIKE = /^[A-Za-z0-9_-]{2,64}$/;

export function tokenize(text: string): string[] {
  const tokens = new Set<string>();
  for (const word of text.toLowerCase().split(/[^\p{L}\p{N}]+/u)) {
    if (word.length >= MIN_TOKEN) tokens.add(word);
  }
  return [...tokens];
}

function docKey(kind: SearchHit['kind'], id: string): DocKey {
  return `${kind === 'goal' ? 'g' : 'a'}:${id}`;
}

function hitOf(key: DocKey, match: SearchHit['match']): SearchHit {
  return { kind: key[0] === 'g' ? 'goal' : 'action', id: key.slice(2), match };
}

/**
 * Inverted index (token -> documents) over goal text and action results, plus an id-prefix index, both kept up
 * to date by the fold: a query costs the size of its smallest posting list, never a scan of the events.
 * Documents are numbered in the order they were first indexed; a higher number is newer and ranks first.
 */
export class SearchIndex {
  private readonly postings = new Map<string, Set<number>>();
  private readonly keys: DocKey[] = [];
  private readonly numbers = new Map<DocKey, number>();
  private readonly tokensOf: string[][] = [];
  private readonly idPrefixes = new Map<string, number[]>();

  /** Sets a document's text (replacing what it had) and registers its id for prefix lookups. */
  setDocument(kind: SearchHit['kind'], id: string, text: string): void {
    const key = docKey(kind, id);
    let doc = this.numbers.get(key);
    if (doc === undefined) {
      doc = this.keys.length;
      this.keys.push(key);
      this.numbers.set(key, doc);
      this.tokensOf.push([]);
      for (const n of ID_PREFIX_LENGTHS) {
        if (id.length >= n) appendTo(this.idPrefixes, id.slice(0, n).toLowerCase(), doc);
      }
    }
    for (const token of this.tokensOf[doc]!) removeFrom(this.postings, token, doc);
    const tokens = tokenize(text);
    for (const token of tokens) addTo(this.postings, token, doc);
    this.tokensOf[doc] = tokens;
  }

  search(query: string, limit = 20): SearchHit[] {
    const trimmed = query.trim();
    const hits: SearchHit[] = [];
    if (limit <= 0) return hits;
    const seen = new Set<number>();
    if (ID_LIKE.test(trimmed)) {
      for (const doc of newest(this.idPrefixMatches(trimmed.toLowerCase()), limit)) {
        hits.push(hitOf(this.keys[doc]!, 'id-prefix'));
        seen.add(doc);
      }
    }
    for (const doc of newest(this.textMatches(trimmed), limit + seen.size)) {
      if (hits.length >= limit) break;
      if (!seen.has(doc)) hits.push(hitOf(this.keys[doc]!, 'text'));
    }
    return hits;
  }

  size(): number {
    return this.keys.length;
  }

  private *idPrefixMatches(prefix: string): Iterable<number> {
    const bucket = this.idPrefixes.get(prefix.slice(0, Math.min(prefix.length, 4)));
    if (!bucket) return;
    for (const doc of bucket) if (this.keys[doc]!.slice(2).toLowerCase().startsWith(prefix)) yield doc;
  }

  /** Documents that hold every token of the query: walk the rarest token's list, probe the others. */
  private *textMatches(query: string): Iterable<number> {
    const lists: Set<number>[] = [];
    for (const token of tokenize(query)) {
      const list = this.postings.get(token);
      if (!list) return;
      lists.push(list);
    }
    if (lists.length === 0) return;
    lists.sort((a, b) => a.size - b.size);
    const [smallest, ...rest] = lists;
    for (const doc of smallest!) if (rest.every((list) => list.has(doc))) yield doc;
  }
}

/** The `limit` highest (newest) document numbers, highest first, without sorting every match of a common word. */
function newest(docs: Iterable<number>, limit: number): number[] {
  const top: number[] = [];
  for (const doc of docs) {
    if (top.length === limit && doc <= top[limit - 1]!) continue;
    let i = top.length;
    while (i > 0 && top[i - 1]! < doc) i--;
    top.splice(i, 0, doc);
    if (top.length > limit) top.pop();
  }
  return top;
}

function addTo(map: Map<string, Set<number>>, token: string, doc: number): void {
  let set = map.get(token);
  if (!set) {
    set = new Set();
    map.set(token, set);
  }
  set.add(doc);
}

function appendTo(map: Map<string, number[]>, prefix: string, doc: number): void {
  const list = map.get(prefix);
  if (list) list.push(doc);
  else map.set(prefix, [doc]);
}

function removeFrom(map: Map<string, Set<number>>, token: string, doc: number): void {
  const set = map.get(token);
  if (!set) return;
  set.delete(doc);
  if (set.size === 0) map.delete(token);
}
