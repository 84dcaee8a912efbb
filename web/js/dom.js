// DOM building without HTML parsing. Every report field is attacker-controlled, so text only
// ever goes in through text nodes and attributes through setAttribute; nothing here touches
// innerHTML.

const BLOCKED_ATTRIBUTE = /^on/i;

/**
 * Creates an element. `props` sets attributes (strings), `className`, `text`, event handlers
 * under `on`, and boolean properties such as `disabled` or `hidden`. Children may be nodes,
 * strings (added as text) or null.
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'className') element.className = value;
    else if (name === 'text') element.textContent = String(value);
    else if (name === 'on') {
      for (const [event, handler] of Object.entries(value))
        element.addEventListener(event, handler);
    } else if (
      name === 'hidden' ||
      name === 'disabled' ||
      name === 'checked' ||
      name === 'selected'
    ) {
      element[name] = Boolean(value);
    } else if (name === 'value') element.value = String(value);
    else {
      if (BLOCKED_ATTRIBUTE.test(name))
        throw new Error(`Rejected event attribute ${name}: use the on property`);
      if (name === 'href' && !isSafeHref(String(value)))
        throw new Error('Rejected link: only paths on this site are allowed');
      element.setAttribute(name, String(value === true ? '' : value));
    }
  }
  append(element, children);
  return element;
}

/** Tells whether a link points at a path on this site, the only links the dashboard builds. */
function isSafeHref(href) {
  return href.startsWith('/') && !href.startsWith('//');
}

export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

export function clear(element) {
  element.replaceChildren();
  return element;
}

/** Shows a short status message in the live region, read out by screen readers. */
export function toast(message, timeoutMs = 6000) {
  const region = document.getElementById('toast');
  if (!region) return;
  region.textContent = message;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => {
    region.textContent = '';
  }, timeoutMs);
}

/** Creates a panel section with a heading. */
export function panel(title, ...children) {
  const id = `panel-${Math.random().toString(36).slice(2, 9)}`;
  return h(
    'section',
    { className: 'panel', 'aria-labelledby': id },
    h('h2', { id, text: title }),
    ...children,
  );
}

export function notice(text) {
  return h('p', { className: 'notice', text });
}

export function errorNotice(error) {
  return h('p', {
    className: 'error-message',
    role: 'alert',
    text: error.message || String(error),
  });
}
