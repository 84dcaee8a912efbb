// The dashboard shell: session, navigation, the filter bar and the router. Each view is its
// own URL; links inside the page are followed without reloading it.

import { api, setCsrfToken } from './api.js';
import { destroyCharts } from './charts.js';
import { append, clear, errorNotice, h, toast } from './dom.js';
import {
  apiParams,
  FILTER_SETS,
  filterQuery,
  filtersFromForm,
  readFilters,
  showFilters,
} from './filters.js';
import { renderOverview } from './views/overview.js';
import { renderReportDetail } from './views/report-detail.js';
import { renderReports } from './views/reports.js';
import { renderRecords } from './views/records.js';
import { renderSources } from './views/sources.js';
import { renderQuarantine } from './views/quarantine.js';
import { renderSettings } from './views/settings.js';
import { renderServices } from './views/services.js';
import { renderRecommendations } from './views/recommendations.js';
import { renderWhatIf } from './views/whatif.js';

// Each route: the URL pattern, the nav entry it highlights, the filters it applies, its view.
const ROUTES = [
  {
    pattern: /^\/$/,
    nav: 'overview',
    title: 'Overview',
    filters: FILTER_SETS.records,
    render: renderOverview,
  },
  {
    pattern: /^\/reports\/(\d+)$/,
    nav: 'reports',
    title: 'Report',
    filters: FILTER_SETS.none,
    render: renderReportDetail,
  },
  {
    pattern: /^\/reports$/,
    nav: 'reports',
    title: 'Reports',
    filters: FILTER_SETS.records,
    render: renderReports,
  },
  {
    pattern: /^\/records$/,
    nav: 'records',
    title: 'Records',
    filters: FILTER_SETS.records,
    render: renderRecords,
  },
  {
    pattern: /^\/sources$/,
    nav: 'sources',
    title: 'Sources',
    filters: FILTER_SETS.analysis,
    render: renderSources,
  },
  {
    pattern: /^\/quarantine$/,
    nav: 'quarantine',
    title: 'Quarantine',
    filters: FILTER_SETS.dates,
    render: renderQuarantine,
  },
  {
    pattern: /^\/settings$/,
    nav: 'settings',
    title: 'Settings',
    filters: FILTER_SETS.none,
    render: renderSettings,
  },
  {
    pattern: /^\/services$/,
    nav: 'services',
    title: 'Services',
    filters: FILTER_SETS.analysis,
    render: renderServices,
  },
  {
    pattern: /^\/recommendations$/,
    nav: 'recommendations',
    title: 'Recommendations',
    filters: FILTER_SETS.analysis,
    render: renderRecommendations,
  },
  {
    // The what-if form has its own domain and dates.
    pattern: /^\/whatif$/,
    nav: 'whatif',
    title: 'What-if',
    filters: FILTER_SETS.none,
    render: renderWhatIf,
  },
];

const main = document.getElementById('main');
const filterForm = document.getElementById('filters');
let session = null;
let filterOptions = { domains: [], reporters: [], services: [] };
let renderCount = 0;

function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  render({ focus: !replace });
}

/** Changes query parameters of the current URL (null removes one) and renders again. */
function setParams(changes) {
  const params = new URLSearchParams(location.search);
  for (const [key, value] of Object.entries(changes)) {
    if (value === null || value === undefined || value === '') params.delete(key);
    else params.set(key, String(value));
  }
  const query = params.toString();
  navigate(`${location.pathname}${query ? `?${query}` : ''}`);
}

function updateNav(route) {
  const query = filterQuery(new URLSearchParams(location.search));
  for (const link of document.querySelectorAll('#nav a')) {
    const path = new URL(link.href).pathname;
    link.setAttribute('href', `${path}${query}`);
    if (link.dataset.view === route?.nav) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.getElementById('reset-filters').setAttribute('href', location.pathname);
}

async function render({ focus = false } = {}) {
  const current = ++renderCount;
  const route = ROUTES.find((entry) => entry.pattern.test(location.pathname));
  const params = new URLSearchParams(location.search);
  const filters = readFilters(params);
  destroyCharts();
  updateNav(route);
  showFilters(filterForm, filters, filterOptions, route?.filters ?? FILTER_SETS.none);
  clear(main);

  if (!route) {
    document.title = 'Not found · dmarc-lens';
    main.append(
      h('h1', { text: 'Page not found' }),
      h('p', {}, h('a', { href: '/', text: 'Go to the overview' })),
    );
    return;
  }
  document.title = `${route.title} · dmarc-lens`;
  const match = route.pattern.exec(location.pathname);
  const context = {
    main,
    show: (...nodes) => append(main, nodes),
    params,
    filters,
    /** The API parameters of the filters this view applies. */
    apiParams: () => apiParams(filters, route.filters),
    filterOptions,
    session,
    match,
    navigate,
    setParams,
    // A view checks this after each await: a newer navigation has replaced it.
    isCurrent: () => current === renderCount,
  };
  try {
    main.setAttribute('aria-busy', 'true');
    await route.render(context);
  } catch (error) {
    if (current === renderCount) main.append(errorNotice(error));
  } finally {
    if (current === renderCount) main.removeAttribute('aria-busy');
  }
  if (focus && current === renderCount) main.focus({ preventScroll: false });
}

function followLinks(event) {
  if (
    event.defaultPrevented ||
    event.button !== 0 ||
    event.metaKey ||
    event.ctrlKey ||
    event.shiftKey ||
    event.altKey
  )
    return;
  const link = event.target.closest('a');
  if (!link || link.hasAttribute('download') || link.target) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || !ROUTES.some((route) => route.pattern.test(url.pathname)))
    return;
  event.preventDefault();
  document.getElementById('nav').classList.remove('open');
  document.querySelector('.nav-toggle').setAttribute('aria-expanded', 'false');
  navigate(`${url.pathname}${url.search}`);
}

function bindChrome() {
  document.addEventListener('click', followLinks);
  window.addEventListener('popstate', () => render());

  filterForm.addEventListener('change', () => {
    const next = filtersFromForm(filterForm, new URLSearchParams(location.search));
    const query = next.toString();
    navigate(`${location.pathname}${query ? `?${query}` : ''}`);
  });
  filterForm.addEventListener('submit', (event) => event.preventDefault());

  const toggle = document.querySelector('.nav-toggle');
  toggle.addEventListener('click', () => {
    const nav = document.getElementById('nav');
    const open = nav.classList.toggle('open');
    toggle.setAttribute('aria-expanded', String(open));
  });

  document.getElementById('logout').addEventListener('click', async () => {
    try {
      await api.post('/api/auth/logout');
      location.assign('/login');
    } catch (error) {
      toast(`Logout failed: ${error.message}`);
    }
  });
}

async function start() {
  bindChrome();
  session = await api.get('/api/auth/session');
  setCsrfToken(session.csrfToken);
  document.getElementById('demo-banner').hidden = !session.demo;
  document.getElementById('user-name').textContent = session.demo
    ? 'Demo'
    : `${session.user.name} (${session.user.role})`;
  document.getElementById('logout').hidden = session.demo || session.user.via !== 'session';
  try {
    filterOptions = await api.get('/api/filters');
  } catch (error) {
    toast(`Filter options not loaded: ${error.message}`);
  }
  await render();
}

start().catch((error) => {
  clear(main).append(errorNotice(error));
});
