// The cairn operator console: the signed-in token, calls to the JSON API, and one Alpine.js
// component per page (x-data="overview()" …). Loaded before Alpine (both deferred, in order),
// so every component exists when Alpine starts. No other script, no request off this origin.
'use strict';

const TOKEN_COOKIE = 'cairn_console_token';
const ORDER_STATUSES = ['draft', 'placed', 'confirmed', 'shipped', 'delivered', 'cancelled'];
const SAGA_STATUSES = ['running', 'completed', 'compensating', 'failed', 'timed_out'];

// The token lives in a session cookie (gone when the browser closes) that only the console's
// pages see (path /console/): every tab of this browser is signed in, and the API never gets
// the cookie (it reads the Authorization header only, so a cookie could not be used against it).
function token() {
  const found = document.cookie.split('; ').find((c) => c.startsWith(TOKEN_COOKIE + '='));
  return found ? decodeURIComponent(found.slice(TOKEN_COOKIE.length + 1)) : null;
}

function keepToken(value) {
  const secure = location.protocol === 'https:' ? '; Secure' : '';
  document.cookie = `${TOKEN_COOKIE}=${encodeURIComponent(value)}; Path=/console/; SameSite=Strict${secure}`;
}

function forgetToken() {
  document.cookie = `${TOKEN_COOKIE}=; Path=/console/; Max-Age=0; SameSite=Strict`;
}

function toSignIn() {
  const here = location.pathname + location.search;
  location.replace('/console/sign-in?next=' + encodeURIComponent(here));
}

if (document.body.dataset.page !== 'sign-in' && !token()) {
  toSignIn();
}

class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || 'HTTP ' + status);
    this.status = status;
    this.problem = problem;
  }
}

// One call to the API with the bearer token; a problem+json answer becomes an ApiError. A 401
// means the token is gone or wrong: back to the sign-in page. With no token at all (another tab
// signed out) there is nothing to ask the server: back to the sign-in page without a request.
async function api(path, options = {}) {
  const current = token();
  if (current === null && options.signIn !== false) {
    toSignIn();
    throw new ApiError(401, null);
  }
  const init = { method: options.method || 'GET', headers: { Authorization: 'Bearer ' + current } };
  if (options.body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(options.body);
  }
  const response = await fetch(path, init);
  const type = response.headers.get('content-type') || '';
  const body = type.includes('json') ? await response.json() : await response.text();
  if (response.status === 401 && options.signIn !== false) {
    forgetToken();
    toSignIn();
  }
  if (!response.ok) {
    throw new ApiError(response.status, typeof body === 'object' ? body : null);
  }
  return body;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// --- formatting, used in the templates ----------------------------------------------------------

function money(amount, currency) {
  return amount === undefined || amount === null ? '' : amount + ' ' + (currency || '');
}

function when(iso) {
  if (!iso) return '';
  const moment = new Date(iso);
  return isNaN(moment) ? String(iso) : moment.toLocaleString();
}

function json(value) {
  return JSON.stringify(value, null, 2);
}

function cell(value) {
  if (value === null || value === undefined) return '';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

function message(error) {
  return error instanceof Error ? error.message : String(error);
}

// Polls ``work`` every ``ms`` without overlapping calls, while the page is open.
function every(ms, work) {
  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      await work();
    } finally {
      busy = false;
    }
  };
  tick();
  return setInterval(tick, ms);
}

// --- components ---------------------------------------------------------------------------------

function session() {
  return {
    who: token() ? 'signed in' : '',
    signOut() {
      forgetToken();
      location.assign('/console/sign-in');
    },
  };
}

function signIn() {
  return {
    token: '',
    busy: false,
    error: '',
    async submit() {
      this.busy = true;
      this.error = '';
      try {
        // Any role may list orders: a wrong token is a 401, whatever its role.
        const response = await fetch('/api/v1/orders?limit=1', {
          headers: { Authorization: 'Bearer ' + this.token.trim() },
        });
        if (response.status === 401) {
          this.error = 'That token is not valid.';
          return;
        }
        keepToken(this.token.trim());
        const next = new URLSearchParams(location.search).get('next') || '/console/';
        location.assign(next.startsWith('/console/') ? next : '/console/');
      } catch (error) {
        this.error = message(error);
      } finally {
        this.busy = false;
      }
    },
  };
}

function overview() {
  return {
    health: {},
    components: [],
    projections: [],
    head: 0,
    rates: [],
    lags: [],
    error: '',
    rateLabel: '',
    lagLabel: '',
    last: null,
    init() {
      every(2000, () => this.loadHealth());
      every(1000, () => this.sample());
    },
    async loadHealth() {
      try {
        this.health = await api('/api/v1/admin/health');
        this.components = Object.entries(this.health.components || {})
          .filter(([, c]) => c && typeof c === 'object')
          .map(([name, c]) => ({ name, status: c.status, message: c.message || '' }));
        this.error = '';
      } catch (error) {
        this.error = message(error);
      }
    },
    async sample() {
      try {
        const { projections } = await api('/api/v1/admin/projections');
        this.projections = projections;
        const now = performance.now();
        const head = Math.max(0, ...projections.map((p) => p.position + p.lag_events));
        const lag = Math.max(0, ...projections.map((p) => p.lag_events));
        if (this.last) {
          const seconds = (now - this.last.at) / 1000;
          const rate = Math.max(0, (head - this.last.head) / seconds);
          this.rates = [...this.rates, rate].slice(-60);
          this.rateLabel = rate.toFixed(1) + ' events/s';
        }
        this.lags = [...this.lags, lag].slice(-60);
        this.lagLabel = lag + ' events behind (largest)';
        this.head = head;
        this.last = { at: now, head };
      } catch (error) {
        this.error = message(error);
      }
    },
    line(values) {
      if (values.length === 0) return '';
      const top = Math.max(1, ...values);
      // The newest sample at the right edge; a minute of samples across.
      const last = values.length - 1;
      return values
        .map((v, n) => `${300 - ((last - n) * 300) / 59},${78 - (v / top) * 74}`)
        .join(' ');
    },
  };
}

function orderList() {
  return {
    q: '',
    status: '',
    statuses: ORDER_STATUSES,
    orders: [],
    next: null,
    busy: false,
    error: '',
    init() {
      this.search();
    },
    async search() {
      this.busy = true;
      this.error = '';
      try {
        if (this.q.trim()) {
          const found = await api('/api/v1/orders/search?limit=50&q=' + encodeURIComponent(this.q.trim()));
          const all = found.orders;
          this.orders = this.status ? all.filter((o) => o.status === this.status) : all;
          this.next = null;
        } else {
          await this.page(null);
        }
      } catch (error) {
        this.error = message(error);
      } finally {
        this.busy = false;
      }
    },
    async page(cursor) {
      const params = new URLSearchParams({ limit: '50' });
      if (this.status) params.set('status', this.status);
      if (cursor) params.set('cursor', cursor);
      const found = await api('/api/v1/orders?' + params);
      this.orders = cursor ? [...this.orders, ...found.orders] : found.orders;
      this.next = found.next_cursor;
    },
    async more() {
      try {
        await this.page(this.next);
      } catch (error) {
        this.error = message(error);
      }
    },
  };
}

function orderPage() {
  return {
    orderId: '',
    history: [],
    latest: 0,
    version: 1,
    view: {},
    error: '',
    asked: 0,
    async init() {
      this.orderId = this.$el.dataset.orderId;
      const path = '/api/v1/orders/' + encodeURIComponent(this.orderId);
      try {
        let after = 0;
        do {
          const page = await api(path + '/history?limit=100&after_version=' + after);
          this.history = [...this.history, ...page.events];
          after = page.next_after_version;
        } while (after !== null && after !== undefined);
        this.latest = this.history.length ? this.history[this.history.length - 1].version : 0;
        this.version = this.latest;
        await this.show();
      } catch (error) {
        this.error = message(error);
      }
    },
    // The order as it was at the slider's version; answers to older moves are dropped.
    async show() {
      const asked = ++this.asked;
      const version = this.version;
      try {
        const view = await api(
          '/api/v1/orders/' + encodeURIComponent(this.orderId) + '?version=' + version,
        );
        if (asked === this.asked) this.view = view;
      } catch (error) {
        if (asked === this.asked) this.error = message(error);
      }
    },
  };
}

function streams() {
  return {
    tail: [],
    live: false,
    streamId: '',
    events: [],
    error: '',
    init() {
      const wanted = new URLSearchParams(location.search).get('stream');
      if (wanted) this.open(wanted);
      this.follow();
    },
    // $all as server-sent events, read with fetch (EventSource cannot send the token).
    async follow() {
      let after = null;
      for (;;) {
        try {
          const query = after === null ? '?backlog=20' : '?after=' + after;
          const response = await fetch('/api/v1/admin/events/live' + query, {
            headers: { Authorization: 'Bearer ' + token(), Accept: 'text/event-stream' },
          });
          if (!response.ok) {
            this.error = 'The live tail needs an admin token (HTTP ' + response.status + ').';
            return;
          }
          this.live = true;
          const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
          let buffer = '';
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            // Any line end the specification allows (CRLF, CR, LF) as LF; a CR at the end of
            // a chunk waits for the next one (it may be half of a CRLF).
            buffer += value;
            const whole = buffer.endsWith('\r') ? buffer.length - 1 : buffer.length;
            buffer = buffer.slice(0, whole).replace(/\r\n?/g, '\n') + buffer.slice(whole);
            let end;
            while ((end = buffer.indexOf('\n\n')) >= 0) {
              const block = buffer.slice(0, end);
              buffer = buffer.slice(end + 2);
              const data = block
                .split('\n')
                .filter((line) => line.startsWith('data: '))
                .map((line) => line.slice(6))
                .join('\n');
              if (!data) continue;
              const event = JSON.parse(data);
              after = event.position;
              this.tail = [event, ...this.tail].slice(0, 200);
            }
          }
        } catch (error) {
          // the server went away or the page is leaving: try again in a moment
        }
        this.live = false;
        await sleep(1000);
      }
    },
    async open(streamId) {
      this.streamId = streamId;
      this.error = '';
      try {
        const found = await api('/api/v1/admin/streams/' + encodeURIComponent(streamId.trim()));
        this.events = found.events;
      } catch (error) {
        this.events = [];
        this.error = message(error);
      }
    },
  };
}

function projections() {
  return {
    items: [],
    parked: [],
    jobs: {},
    error: '',
    retried: '',
    init() {
      every(1000, () => this.load());
    },
    async load() {
      try {
        const { projections } = await api('/api/v1/admin/projections');
        this.items = projections;
        const parked = [];
        for (const p of projections.filter((p) => p.parked > 0)) {
          const found = await api('/api/v1/admin/projections/' + encodeURIComponent(p.name) + '/parked');
          parked.push(...found.parked.map((e) => ({ projection: p.name, ...e })));
        }
        this.parked = parked;
        this.error = '';
      } catch (error) {
        this.error = message(error);
      }
    },
    running(name) {
      return this.jobs[name] !== undefined && this.jobs[name].state === 'running';
    },
    // Start a rebuild and follow its job; the bar stays, full, once it is done.
    async rebuild(name) {
      this.jobs = { ...this.jobs, [name]: { state: 'running', progress: 0 } };
      try {
        const started = await api('/api/v1/admin/projections/' + encodeURIComponent(name) + '/rebuild', {
          method: 'POST',
        });
        for (;;) {
          const job = await api('/api/v1/admin/replays/' + encodeURIComponent(started.job_id));
          this.jobs = { ...this.jobs, [name]: job };
          if (job.state !== 'running') break;
          await sleep(250);
        }
      } catch (error) {
        this.jobs = { ...this.jobs, [name]: { state: 'failed', progress: 0 } };
        this.error = message(error);
      }
    },
    async retry(event) {
      try {
        const params = new URLSearchParams({ id: event.id });
        const path = '/api/v1/admin/projections/' + encodeURIComponent(event.projection) + '/parked/retry?';
        const result = await api(path + params, { method: 'POST' });
        this.retried = `Retried ${result.retried}, failed again ${result.failed}.`;
        await this.load();
      } catch (error) {
        this.error = message(error);
      }
    },
  };
}

function sagas() {
  return {
    status: new URLSearchParams(location.search).get('status') || '',
    statuses: SAGA_STATUSES,
    items: [],
    counts: '',
    saga: null,
    loaded: false,
    error: '',
    init() {
      this.load();
    },
    async load() {
      this.error = '';
      try {
        const query = this.status ? '?status=' + encodeURIComponent(this.status) : '';
        this.items = (await api('/api/v1/admin/sagas' + query)).sagas;
        const sagas = (await api('/api/v1/admin/health')).components.sagas || {};
        this.counts = Object.entries(sagas.by_status || {})
          .map(([status, n]) => `${n} ${status}`)
          .join(' · ');
      } catch (error) {
        this.items = [];
        this.error = message(error);
      } finally {
        this.loaded = true;
      }
    },
    async open(sagaId) {
      try {
        this.saga = await api('/api/v1/admin/sagas/' + encodeURIComponent(sagaId));
      } catch (error) {
        this.error = message(error);
      }
    },
    async retry() {
      try {
        await api('/api/v1/admin/sagas/' + encodeURIComponent(this.saga.saga_id) + '/retry', {
          method: 'POST',
        });
        await this.open(this.saga.saga_id);
        await this.load();
      } catch (error) {
        this.error = message(error);
      }
    },
  };
}

function customers() {
  return {
    customerId: '',
    asking: false,
    done: '',
    error: '',
    ask() {
      this.done = '';
      this.error = '';
      this.asking = this.customerId.trim() !== '';
    },
    async forget() {
      this.asking = false;
      try {
        const id = this.customerId.trim();
        const result = await api('/api/v1/admin/customers/' + encodeURIComponent(id) + '/forget', {
          method: 'POST',
        });
        const orders = result.order_ids.length;
        this.done = `Customer ${result.customer_id} forgotten (${orders} order${orders === 1 ? '' : 's'}).`;
      } catch (error) {
        this.error = message(error);
      }
    },
  };
}

function timeTravel() {
  const params = new URLSearchParams(location.search);
  return {
    names: [],
    projection: params.get('projection') || '',
    position: params.has('position') ? Number(params.get('position')) : 0,
    table: params.get('table') || '',
    tables: [],
    result: null,
    rows: [],
    columns: [],
    next: null,
    summary: '',
    error: '',
    async init() {
      try {
        const { projections } = await api('/api/v1/admin/projections');
        this.names = projections.map((p) => p.name);
        if (!this.projection) this.projection = this.names[0] || '';
        if (!params.has('position')) {
          this.position = Math.max(0, ...projections.map((p) => p.position));
        }
      } catch (error) {
        this.error = message(error);
        return;
      }
      if (params.has('position')) await this.load(null);
    },
    async load(cursor) {
      this.error = '';
      const query = new URLSearchParams({ position: String(this.position), limit: '100' });
      if (this.table) query.set('table', this.table);
      if (cursor) query.set('cursor', cursor);
      try {
        const path = '/api/v1/admin/projections/' + encodeURIComponent(this.projection) + '/as-of?';
        const found = await api(path + query);
        this.result = found;
        this.tables = found.tables;
        this.rows = cursor ? [...this.rows, ...found.rows] : found.rows;
        this.columns = this.rows.length ? Object.keys(this.rows[0]) : [];
        this.next = found.next_cursor;
        this.summary =
          `${found.total} rows of ${found.table} at position ${found.position} ` +
          `(head ${found.head}): save point ${found.save_point}, ${found.replayed} events replayed.`;
      } catch (error) {
        this.result = null;
        this.rows = [];
        this.error = message(error);
      }
    },
  };
}
