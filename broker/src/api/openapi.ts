/** The OpenAPI 3.1 description of /api/v1, served at /api/v1/openapi.json. */

const error = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message', 'hint'],
      properties: {
        code: { type: 'string', description: 'Stable error code (see the README error table).' },
        message: { type: 'string' },
        hint: { type: 'string', description: 'What to do next.' },
      },
    },
  },
} as const;

const agent = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    online: { type: 'boolean' },
    createdAt: { type: 'string', format: 'date-time' },
    lastSeenAt: { type: ['string', 'null'], format: 'date-time' },
  },
} as const;

const connection = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    type: { type: 'string', enum: ['postgres'] },
    agent: { type: 'string' },
    agentId: { type: 'string' },
    agentOnline: { type: 'boolean' },
    host: { type: 'string' },
    port: { type: 'integer' },
    user: { type: 'string' },
    database: { type: 'string' },
    tls: { type: 'string', enum: ['disable', 'prefer', 'require'] },
    credential: {
      type: 'string',
      description: '"stored", "none" or "ref:env:NAME"; never the secret.',
    },
    createdAt: { type: 'string', format: 'date-time' },
  },
} as const;

const connectionInput = {
  type: 'object',
  required: ['name', 'agent', 'type', 'host', 'port', 'user', 'database'],
  properties: {
    name: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' },
    agent: { type: 'string' },
    type: { type: 'string', enum: ['postgres'] },
    host: { type: 'string' },
    port: { type: 'integer', minimum: 1, maximum: 65535 },
    user: { type: 'string' },
    database: { type: 'string' },
    tls: { type: 'string', enum: ['disable', 'prefer', 'require'] },
    password: {
      type: 'string',
      description: 'Stored encrypted at rest; sent only to the owning agent.',
    },
    passwordRef: {
      type: 'string',
      description: 'env:NAME, resolved by the agent in its own environment.',
    },
  },
} as const;

const session = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    connectionName: { type: 'string' },
    userId: { type: ['string', 'null'] },
    agentId: { type: ['string', 'null'] },
    status: { type: 'string', enum: ['open', 'closed', 'failed'] },
    errorCode: { type: ['string', 'null'] },
    startedAt: { type: 'string', format: 'date-time' },
    endedAt: { type: ['string', 'null'], format: 'date-time' },
    bytesUp: { type: 'integer' },
    bytesDown: { type: 'integer' },
  },
} as const;

const errors = {
  '400': {
    description: 'Invalid request',
    content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
  },
  '401': {
    description: 'Missing or invalid token',
    content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
  },
  '403': {
    description: 'Not allowed',
    content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
  },
  '404': {
    description: 'Not found',
    content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
  },
} as const;

const json = (ref: string, array = false) => ({
  'application/json': { schema: array ? { type: 'array', items: { $ref: ref } } : { $ref: ref } },
});

export function openApiDocument(version: string): unknown {
  return {
    openapi: '3.1.0',
    info: {
      title: 'hoop broker API',
      version,
      description:
        'Administer agents and connections, inspect sessions. Authenticate with `Authorization: Bearer <token>`. Tunnels use WebSockets at /v1/agent (agent token) and /v1/tunnel (user token).',
    },
    servers: [{ url: '/' }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Error: error,
        Agent: agent,
        Connection: connection,
        ConnectionInput: connectionInput,
        Session: session,
      },
    },
    security: [{ bearer: [] }],
    paths: {
      '/api/v1/health': {
        get: {
          summary: 'Liveness and counts of live tunnels',
          security: [],
          responses: { '200': { description: 'OK' } },
        },
      },
      '/api/v1/openapi.json': {
        get: {
          summary: 'This document',
          security: [],
          responses: { '200': { description: 'OK' } },
        },
      },
      '/api/v1/whoami': {
        get: {
          summary: 'The identity behind the token',
          responses: { '200': { description: 'OK' }, ...errors },
        },
      },
      '/api/v1/agents': {
        get: {
          summary: 'List agents (admin)',
          responses: {
            '200': { description: 'OK', content: json('#/components/schemas/Agent', true) },
            ...errors,
          },
        },
        post: {
          summary: 'Register an agent (admin); the response carries its token, shown only once',
          requestBody: {
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['name'],
                  properties: { name: { type: 'string' } },
                },
              },
            },
          },
          responses: {
            '201': { description: 'Created' },
            ...errors,
            '409': { description: 'Name taken' },
          },
        },
      },
      '/api/v1/agents/{name}': {
        parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string' } }],
        get: {
          summary: 'Show an agent (admin)',
          responses: {
            '200': { description: 'OK', content: json('#/components/schemas/Agent') },
            ...errors,
          },
        },
        delete: {
          summary: 'Delete an agent with no connections (admin)',
          responses: { '200': { description: 'Deleted' }, ...errors },
        },
      },
      '/api/v1/connections': {
        get: {
          summary: 'List connections',
          responses: {
            '200': { description: 'OK', content: json('#/components/schemas/Connection', true) },
            ...errors,
          },
        },
        post: {
          summary: 'Create a connection (admin)',
          requestBody: { content: json('#/components/schemas/ConnectionInput') },
          responses: {
            '201': { description: 'Created', content: json('#/components/schemas/Connection') },
            ...errors,
            '409': { description: 'Name taken' },
          },
        },
      },
      '/api/v1/connections/{name}': {
        parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string' } }],
        get: {
          summary: 'Show a connection',
          responses: {
            '200': { description: 'OK', content: json('#/components/schemas/Connection') },
            ...errors,
          },
        },
        delete: {
          summary: 'Delete a connection (admin)',
          responses: { '200': { description: 'Deleted' }, ...errors },
        },
      },
      '/api/v1/sessions': {
        get: {
          summary: 'Recent sessions, newest first (admin)',
          parameters: [{ name: 'limit', in: 'query', schema: { type: 'integer', maximum: 1000 } }],
          responses: {
            '200': { description: 'OK', content: json('#/components/schemas/Session', true) },
            ...errors,
          },
        },
      },
      '/api/v1/sessions/{id}': {
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        get: {
          summary: 'Show a session (admin)',
          responses: {
            '200': { description: 'OK', content: json('#/components/schemas/Session') },
            ...errors,
          },
        },
      },
      '/api/v1/grants': {
        post: {
          summary:
            'Mint a short-lived grant for a connection (201 {grant, …}); when its policy needs an access review, 202 {review} instead, unless breakGlass',
          requestBody: {
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['connection'],
                  properties: {
                    connection: { type: 'string' },
                    ttl: {
                      description: 'seconds, or a duration such as 15m or 2h (capped)',
                      oneOf: [{ type: 'integer' }, { type: 'string' }],
                    },
                    reason: { type: 'string', maxLength: 500 },
                    actions: { type: 'array', items: { type: 'string' } },
                    breakGlass: {
                      type: 'boolean',
                      description:
                        "take access at once as a member of the policy's reviews.break_glass groups (reason required)",
                    },
                  },
                },
              },
            },
          },
          responses: {
            '201': { description: 'The grant (returned once; never stored)' },
            '202': { description: 'An access review was created: {review}' },
            ...errors,
          },
        },
        get: {
          summary: 'Grants (admins: all; others: their own), never with their JWT',
          responses: { '200': { description: 'An array of grants' }, ...errors },
        },
      },
      '/api/v1/grants/current': {
        get: {
          summary: 'The connection and actions of the grant used as bearer',
          responses: { '200': { description: 'OK' }, ...errors },
        },
      },
      '/api/v1/grants/{id}': {
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        delete: {
          summary: 'Revoke a grant; its live sessions are closed',
          responses: { '200': { description: 'The revoked grant' }, ...errors },
        },
      },
      '/api/v1/grants/keys/rotate': {
        post: {
          summary: 'Rotate the grant signing key (admin)',
          responses: { '200': { description: 'The new key id' }, ...errors },
        },
      },
      '/api/v1/reviews': {
        get: {
          summary: 'Reviews you requested or may approve (admins: all), newest first',
          parameters: [
            { name: 'status', in: 'query', schema: { type: 'string' } },
            { name: 'limit', in: 'query', schema: { type: 'integer', maximum: 1000 } },
          ],
          responses: { '200': { description: 'An array of reviews (id, status, …)' }, ...errors },
        },
      },
      '/api/v1/reviews/{id}': {
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        get: {
          summary: 'Show a review; its requester also gets `grant` once it is approved',
          responses: { '200': { description: 'OK' }, ...errors },
        },
      },
      ...Object.fromEntries(
        (['approve', 'reject', 'revoke'] as const).map((action) => [
          `/api/v1/reviews/{id}/${action}`,
          {
            parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
            post: {
              summary: `${action[0]?.toUpperCase()}${action.slice(1)} a review (body: {reason})`,
              responses: { '200': { description: 'The review after the decision' }, ...errors },
            },
          },
        ]),
      ),
    },
  };
}
