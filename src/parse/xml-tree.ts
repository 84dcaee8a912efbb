/** A small element tree, built for one `<record>` or header element at a time. */
export interface XmlElement {
  /** Local name in lower case: prefixes and namespaces are dropped, as reporters vary them. */
  name: string;
  attributes: Record<string, string> | null;
  text: string;
  children: XmlElement[];
}

const localNames = new Map<string, string>();

/** Returns the lower-case local name of an element, cached because a report repeats a few dozen. */
export function localName(qualifiedName: string): string {
  let local = localNames.get(qualifiedName);
  if (local === undefined) {
    const colon = qualifiedName.indexOf(':');
    local = (colon === -1 ? qualifiedName : qualifiedName.slice(colon + 1)).toLowerCase();
    // Bounded, so that a document of endless distinct names cannot grow it without limit.
    if (localNames.size < 10_000) localNames.set(qualifiedName, local);
  }
  return local;
}

export function childrenNamed(element: XmlElement, name: string): XmlElement[] {
  return element.children.filter((child) => child.name === name);
}

export function firstChild(element: XmlElement, ...names: string[]): XmlElement | undefined {
  return element.children.find((child) => names.includes(child.name));
}

/** Returns the trimmed text of the first child with one of the names, or null when it is missing or empty. */
export function childText(element: XmlElement | undefined, ...names: string[]): string | null {
  if (!element) return null;
  const child = firstChild(element, ...names);
  if (!child) return null;
  const text = child.text.trim();
  return text === '' ? null : text;
}

/**
 * Converts an element the reader does not know into plain JSON, so that it can be stored
 * as it came: text for a leaf, an object of children otherwise (arrays for repeats).
 */
export function elementToJson(element: XmlElement): unknown {
  if (element.children.length === 0 && !element.attributes) return element.text.trim();

  const value: Record<string, unknown> = {};
  if (element.attributes) {
    for (const [name, attribute] of Object.entries(element.attributes)) {
      value[`@${name}`] = attribute;
    }
  }
  for (const child of element.children) {
    const childValue = elementToJson(child);
    const existing = value[child.name];
    if (existing === undefined) value[child.name] = childValue;
    else if (Array.isArray(existing)) existing.push(childValue);
    else value[child.name] = [existing, childValue];
  }
  const text = element.text.trim();
  if (text !== '') value['#text'] = text;
  return value;
}

/** Collects the children whose names are not in `known` as JSON, or null when there are none. */
export function unknownChildren(
  element: XmlElement,
  known: ReadonlySet<string>,
): Record<string, unknown> | null {
  let extensions: Record<string, unknown> | null = null;
  for (const child of element.children) {
    if (known.has(child.name)) continue;
    extensions ??= {};
    const value = elementToJson(child);
    const existing = extensions[child.name];
    if (existing === undefined) extensions[child.name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else extensions[child.name] = [existing, value];
  }
  return extensions;
}
