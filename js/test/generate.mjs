// Deterministic synthetic audit events for load tests (same seed, same bytes): a mix of
// users, namespaces, resources, verbs, status codes, intranet and Internet source IPs,
// exec/attach, secret reads and deletions over ten days, one JSON line per event.

function mulberry32(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const USERS = ['kubernetes-admin', 'alice', 'bob', 'ci-deployer', 'system:serviceaccount:kube-system:replicaset-controller',
  'system:kube-controller-manager', 'system:node:node-1', 'system:anonymous', '27689245'];
const NAMESPACES = ['default', 'kube-system', 'prod', 'staging', 'monitoring', 'payments', ''];
const RESOURCES = [
  ['pods', ''], ['deployments', 'apps'], ['statefulsets', 'apps'], ['daemonsets', 'apps'], ['jobs', 'batch'], ['cronjobs', 'batch'],
  ['services', ''], ['ingresses', 'networking.k8s.io'], ['configmaps', ''], ['secrets', ''], ['persistentvolumeclaims', ''],
  ['clusterroles', 'rbac.authorization.k8s.io'], ['aliyunlogconfigs', 'log.alibabacloud.com'], ['nodes', ''],
];
const VERBS = ['get', 'get', 'list', 'list', 'watch', 'create', 'update', 'patch', 'delete'];
const CODES = [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 201, 201, 201, 201, 403, 404, 404, 409, 500];
const INTERNET = ['203.0.113.7', '198.51.100.23', '8.8.8.8', '1.1.1.1', '45.33.32.156', '2001:db8::1'];

/** `n` events as JSON lines, starting at 2024-05-01T00:00:00Z, spread over ten days. */
export function generateEvents(n, seed = 42) {
  const rand = mulberry32(seed);
  const pick = (a) => a[Math.floor(rand() * a.length)];
  const start = Date.UTC(2024, 4, 1);
  const span = 10 * 86400 * 1000;
  const lines = new Array(n);
  for (let i = 0; i < n; i++) {
    const t = new Date(start + Math.floor((i / n) * span) + Math.floor(rand() * 1000));
    const ts = `${t.toISOString().slice(0, 19)}.${String(t.getUTCMilliseconds()).padStart(3, '0')}000Z`;
    let [resource, group] = pick(RESOURCES);
    let verb = pick(VERBS);
    let sub;
    const ns = resource === 'nodes' || resource === 'clusterroles' ? '' : pick(NAMESPACES) || 'default';
    const name = `${resource.slice(0, 6)}-${Math.floor(rand() * 500)}`;
    let uri = `/api${group ? `s/${group}/v1` : '/v1'}${ns ? `/namespaces/${ns}` : ''}/${resource}${verb === 'list' || verb === 'create' ? '' : `/${name}`}`;
    if (rand() < 0.01) {
      resource = 'pods'; group = ''; verb = 'create'; sub = rand() < 0.8 ? 'exec' : 'attach';
      uri = `/api/v1/namespaces/${ns || 'default'}/pods/${name}/${sub}?command=sh&command=-c&command=id&container=app&stdin=true&tty=true`;
    }
    const ip = rand() < 0.05 ? pick(INTERNET) : `10.0.${Math.floor(rand() * 4)}.${Math.floor(rand() * 250) + 1}`;
    const code = sub ? 101 : pick(CODES);
    const ev = {
      kind: 'Event', apiVersion: 'audit.k8s.io/v1', level: 'Metadata',
      auditID: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      stage: 'ResponseComplete', requestURI: uri, verb,
      user: { username: pick(USERS), groups: ['system:authenticated'] },
      sourceIPs: [ip], userAgent: pick(['kubectl/v1.30.0 (linux/amd64) kubernetes/abcdef', 'kube-controller-manager/v1.30.0', 'Go-http-client/2.0']),
      objectRef: { resource, namespace: ns || undefined, name: verb === 'list' ? undefined : name, apiGroup: group || undefined, apiVersion: 'v1', subresource: sub },
      responseStatus: { metadata: {}, code },
      requestReceivedTimestamp: ts, stageTimestamp: ts,
      annotations: { 'authorization.k8s.io/decision': code === 403 ? 'forbid' : 'allow', 'authorization.k8s.io/reason': '' },
    };
    lines[i] = JSON.stringify(ev);
  }
  return lines.join('\n') + '\n';
}
