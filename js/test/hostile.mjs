// Hostile strings for the report renderers, and an audit log that carries them in every field
// the reports show. An API caller writes most of these fields (user agent, object names,
// namespaces, URIs; the user name of an unauthenticated request), so each payload here tries to
// leave its text context: comment and CDATA openers that switch the HTML tokenizer's script
// states, closing and opening script tags, SVG and MathML with handlers, attribute breakouts,
// template syntax, JavaScript line terminators, control characters, prototype keys, and a 1 MB
// string. A payload that runs sets `window.__kauditPwned`.

const RUN = 'window.__kauditPwned=1';

export const HOSTILE = [
  '<!--',
  '<!--<script>',
  '<!-- <script> </script> -->',
  `</script><script>${RUN}</script>`,
  `<script>${RUN}</script>`,
  `</SCRIPT ><ScRiPt>${RUN}</sCrIpT>`,
  `<svg onload="${RUN}">`,
  `<svg><script>${RUN}</script></svg>`,
  `<img src=x onerror="${RUN}">`,
  `"><img src=x onerror=${RUN}>`,
  `' onmouseover='${RUN}' x='`,
  `" autofocus onfocus="${RUN}`,
  `<iframe srcdoc="<script>parent.${RUN}</script>"></iframe>`,
  `<math><mtext><table><mglyph><style><img src=x onerror=${RUN}>`,
  '<style>*{display:none!important}</style>',
  '<base href="https://attacker.invalid/">',
  `javascript:${RUN}`,
  `{{constructor.constructor('${RUN}')()}}`,
  '${' + RUN + '}',
  '<![CDATA[',
  ']]>',
  '&lt;b&gt;&amp;&#0;&',
  'line\u2028separator\u2029paragraph',
  'ctl\u0000\u0007\u0008\u001b[31m\u007f\u009b2J\u202eevil',
  '__proto__',
  'constructor',
  ' ',
  `${'A'.repeat(1 << 20)}<!--`,
];

const pad = (n) => String(n).padStart(4, '0');

/** The events: per payload, a secret deletion from an Internet address, a `kubectl exec` (command
 * and container from the URI), an operation on a custom resource type named by the payload, and
 * a secret read whose first source address is the payload (X-Forwarded-For is the caller's). */
export function hostileEvents() {
  const events = [];
  HOSTILE.forEach((h, i) => {
    const t = (s) => `2026-12-01T10:${pad(i).slice(2)}:${String(s).padStart(2, '0')}.000000Z`;
    const base = (stage, k) => ({
      kind: 'Event', apiVersion: 'audit.k8s.io/v1', level: 'Metadata', stage,
      auditID: `${h}#${i}-${k}`,
      user: { username: `${h}`, groups: ['system:authenticated'] },
      sourceIPs: ['203.0.113.9'],
      userAgent: h,
      requestReceivedTimestamp: t(k), stageTimestamp: t(k),
    });
    events.push({
      ...base('ResponseComplete', 1), verb: 'delete',
      requestURI: `/api/v1/namespaces/x/secrets/y?h=${encodeURIComponent(h)}`,
      objectRef: { resource: 'secrets', namespace: h, name: h, apiVersion: 'v1' },
      responseStatus: { metadata: {}, code: 200 },
    });
    events.push({
      ...base('ResponseStarted', 2), verb: 'create',
      requestURI: `/api/v1/namespaces/x/pods/y/exec?command=${encodeURIComponent(h)}&container=${encodeURIComponent(h)}&stdin=true`,
      objectRef: { resource: 'pods', subresource: 'exec', namespace: h, name: h, apiVersion: 'v1' },
      responseStatus: { metadata: {}, code: 101 },
    });
    events.push({
      ...base('ResponseComplete', 3), verb: 'update',
      requestURI: `/apis/example.com/v1/namespaces/x/widgets/y`,
      objectRef: { resource: `widgets${i}${h.length < 200 ? h : ''}`, namespace: h, name: h, apiGroup: 'example.com', apiVersion: 'v1' },
      responseStatus: { metadata: {}, code: 409 },
    });
    events.push({
      ...base('ResponseComplete', 4), verb: 'get', sourceIPs: [h, '10.0.0.1'],
      requestURI: '/api/v1/namespaces/x/secrets/y',
      objectRef: { resource: 'secrets', namespace: h, name: h, apiVersion: 'v1' },
      responseStatus: { metadata: {}, code: 403 },
    });
  });
  return events;
}

export function hostileLog() {
  return `${hostileEvents().map((e) => JSON.stringify(e)).join('\n')}\n`;
}
