import { api } from '../api.js';
import { h, notice, panel, toast } from '../dom.js';
import { formatTime } from '../format.js';
import { catalogPanel } from './catalog.js';
import { isAdmin, viewHeader } from './common.js';

function field(label, input) {
  return h('label', {}, label, input);
}

function accountPanel(context) {
  const { session } = context;
  if (session.demo)
    return panel('Account', notice('Demo mode has no accounts: everyone is an admin.'));
  if (session.user.via !== 'session')
    return panel('Account', notice(`Signed in with the API token "${session.user.name}".`));

  const current = h('input', {
    type: 'password',
    name: 'currentPassword',
    autocomplete: 'current-password',
    required: true,
  });
  const next = h('input', {
    type: 'password',
    name: 'newPassword',
    autocomplete: 'new-password',
    minlength: 12,
    required: true,
  });
  const form = h(
    'form',
    {
      className: 'form',
      on: {
        submit: async (event) => {
          event.preventDefault();
          try {
            const result = await api.post('/api/auth/password', {
              currentPassword: current.value,
              newPassword: next.value,
            });
            toast(`Password changed; ${result.closedSessions} other sessions logged out`);
            form.reset();
          } catch (error) {
            toast(`Password not changed: ${error.message}`);
          }
        },
      },
    },
    field('Current password', current),
    field('New password (12 characters or more)', next),
    h('button', { type: 'submit', className: 'primary', text: 'Change password' }),
  );
  const everywhere = h('button', {
    type: 'button',
    className: 'danger',
    text: 'Log out everywhere',
    on: {
      click: async () => {
        await api.post('/api/auth/logout-everywhere');
        location.assign('/login');
      },
    },
  });
  return panel(
    'Account',
    h('p', { text: `Logged in as ${session.user.name} (${session.user.role}).` }),
    form,
    h('p', {}, everywhere, ' ends every session of this user, on every device.'),
  );
}

async function usersPanel(context) {
  const { rows } = await api.get('/api/users');
  const refresh = () => context.setParams({});

  const table = h(
    'table',
    {},
    h('caption', { className: 'visually-hidden', text: 'Users' }),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['User', 'Role', 'Created', 'Password changed', 'Actions'].map((label) =>
          h('th', { scope: 'col', text: label }),
        ),
      ),
    ),
    h(
      'tbody',
      {},
      rows.map((user) => {
        const role = h(
          'select',
          {
            'aria-label': `Role of ${user.username}`,
            on: {
              change: async (event) => {
                try {
                  await api.patch(`/api/users/${user.id}`, { role: event.target.value });
                  toast(`${user.username} is now ${event.target.value}`);
                } catch (error) {
                  toast(error.message);
                }
                refresh();
              },
            },
          },
          ['viewer', 'admin'].map((value) =>
            h('option', { value, selected: value === user.role, text: value }),
          ),
        );
        const remove = h('button', {
          type: 'button',
          className: 'danger',
          text: 'Delete',
          'aria-label': `Delete ${user.username}`,
          on: {
            click: async () => {
              if (!confirm(`Delete user ${user.username}?`)) return;
              try {
                await api.delete(`/api/users/${user.id}`);
                toast(`Deleted ${user.username}`);
              } catch (error) {
                toast(error.message);
              }
              refresh();
            },
          },
        });
        return h(
          'tr',
          {},
          h('td', { text: user.username }),
          h('td', {}, role),
          h('td', { text: formatTime(user.createdAt) }),
          h('td', { text: formatTime(user.passwordChangedAt) }),
          h('td', {}, remove),
        );
      }),
    ),
  );

  const username = h('input', { name: 'username', required: true, autocomplete: 'off' });
  const password = h('input', {
    name: 'password',
    type: 'password',
    minlength: 12,
    required: true,
    autocomplete: 'new-password',
  });
  const role = h(
    'select',
    { name: 'role' },
    h('option', { value: 'viewer', text: 'viewer' }),
    h('option', { value: 'admin', text: 'admin' }),
  );
  const form = h(
    'form',
    {
      className: 'form',
      on: {
        submit: async (event) => {
          event.preventDefault();
          try {
            await api.post('/api/users', {
              username: username.value,
              password: password.value,
              role: role.value,
            });
            toast(`Created ${username.value}`);
            refresh();
          } catch (error) {
            toast(`User not created: ${error.message}`);
          }
        },
      },
    },
    field('User name', username),
    field('Initial password', password),
    field('Role', role),
    h('button', { type: 'submit', className: 'primary', text: 'Add user' }),
  );
  return panel('Users', h('div', { className: 'table-wrap' }, table), form);
}

async function tokensPanel(context) {
  const { rows } = await api.get('/api/tokens');
  const created = h('div', { 'aria-live': 'polite' });

  const table = h(
    'table',
    {},
    h('caption', { className: 'visually-hidden', text: 'API tokens' }),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['Name', 'Role', 'Token starts', 'Created', 'Last used', 'Status', 'Actions'].map((label) =>
          h('th', { scope: 'col', text: label }),
        ),
      ),
    ),
    h(
      'tbody',
      {},
      rows.length === 0
        ? h('tr', {}, h('td', { colspan: 7, className: 'muted', text: 'No API tokens yet.' }))
        : null,
      rows.map((token) =>
        h(
          'tr',
          {},
          h('td', { className: 'wrap-anywhere', text: token.name }),
          h('td', { text: token.role }),
          h('td', { text: `${token.tokenPrefix}…` }),
          h('td', {
            text: `${formatTime(token.createdAt)}${token.createdBy ? ` by ${token.createdBy}` : ''}`,
          }),
          h('td', { text: formatTime(token.lastUsedAt) || 'never' }),
          h('td', { text: token.revokedAt ? `revoked ${formatTime(token.revokedAt)}` : 'active' }),
          h(
            'td',
            {},
            token.revokedAt
              ? null
              : h('button', {
                  type: 'button',
                  className: 'danger',
                  text: 'Revoke',
                  'aria-label': `Revoke token ${token.name}`,
                  on: {
                    click: async () => {
                      try {
                        await api.post(`/api/tokens/${token.id}/revoke`);
                        toast(`Revoked ${token.name}`);
                      } catch (error) {
                        toast(error.message);
                      }
                      context.setParams({});
                    },
                  },
                }),
          ),
        ),
      ),
    ),
  );

  const name = h('input', { name: 'name', required: true, autocomplete: 'off' });
  const role = h(
    'select',
    { name: 'role' },
    h('option', { value: 'viewer', text: 'viewer' }),
    h('option', { value: 'admin', text: 'admin' }),
  );
  const form = h(
    'form',
    {
      className: 'form',
      on: {
        submit: async (event) => {
          event.preventDefault();
          try {
            const token = await api.post('/api/tokens', { name: name.value, role: role.value });
            created.replaceChildren(
              h('p', {
                text: `Token "${token.name}" created. Copy it now; it is not shown again.`,
              }),
              h('input', {
                className: 'secret',
                readonly: true,
                value: token.token,
                'aria-label': 'New API token',
                id: 'new-token',
              }),
            );
          } catch (error) {
            toast(`Token not created: ${error.message}`);
          }
        },
      },
    },
    field('Token name', name),
    field('Role', role),
    h('button', { type: 'submit', className: 'primary', text: 'Create token' }),
  );
  return panel(
    'API tokens',
    h('p', {
      className: 'muted',
      text: 'Scripts send a token as "Authorization: Bearer <token>".',
    }),
    h('div', { className: 'table-wrap' }, table),
    form,
    created,
  );
}

export async function renderSettings(context) {
  const panels = [accountPanel(context)];
  if (isAdmin(context)) {
    panels.push(await usersPanel(context), await tokensPanel(context));
  } else {
    panels.push(panel('Users and API tokens', notice('Only admins manage users and API tokens.')));
  }
  panels.push(await catalogPanel(context, isAdmin(context)));
  if (!context.isCurrent()) return;
  context.show(viewHeader('Settings'), ...panels);
}
