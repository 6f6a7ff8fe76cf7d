// Building DOM without HTML strings: every value from the mesh becomes a text node, never markup.

export type Child = Node | string | number | null | undefined | false | Child[];

/** Attributes a caller may set. Event handlers are passed as functions (`on`), never as attribute text. */
export interface Attrs {
  class?: string;
  title?: string;
  /** `data-*` attributes, which the tests and CSS select on. */
  data?: Record<string, string>;
  on?: { [K in keyof HTMLElementEventMap]?: (event: HTMLElementEventMap[K]) => void };
  [attr: string]: unknown;
}

const SAFE_ATTRS = new Set([
  'type',
  'value',
  'max',
  'min',
  'low',
  'high',
  'optimum',
  'placeholder',
  'autocomplete',
  'disabled',
  'colspan',
  'scope',
  'role',
  'aria-label',
  'aria-live',
  'datetime',
  'id',
  'for',
  'name',
  'hidden',
]);

function append(parent: Node, child: Child): void {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    for (const c of child) append(parent, c);
    return;
  }
  parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
}

/** `h('td', { class: 'num' }, text)`: an element whose string children are text, not HTML. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs | null = null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = String(value);
    else if (key === 'title') el.title = String(value);
    else if (key === 'data') for (const [k, v] of Object.entries(value as object)) el.dataset[k] = String(v);
    else if (key === 'on') {
      for (const [name, fn] of Object.entries(value as object)) el.addEventListener(name, fn as EventListener);
    } else if (key === 'href') {
      // Only in-page links: no javascript: or foreign URLs built from mesh data.
      const href = String(value);
      if (href.startsWith('#')) el.setAttribute('href', href);
    } else if (SAFE_ATTRS.has(key)) el.setAttribute(key, value === true ? '' : String(value));
    else throw new Error(`h(): attribute ${key} is not allowed`);
  }
  append(el, children);
  return el;
}

/** Replaces an element's content, keeping the element (and the listeners and focus around it). */
export function fill(el: Element, ...children: Child[]): void {
  const frag = document.createDocumentFragment();
  append(frag, children);
  el.replaceChildren(frag);
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`dashboard: #${id} missing from the page`);
  return el as T;
}
