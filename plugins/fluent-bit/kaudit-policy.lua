-- The seed's audit policy (the ACK default policy, kaudit's embedded default; rules/ack-default-audit-policy.yaml)
-- written as a Fluent Bit Lua filter, the way a Fluent Bit user would write it without kaudit.
--
-- It is the peer `cargo xtask bench-fluent-bit` measures the kaudit module against (policy only:
-- no enrichment, no alerts), and real_fluent_bit.rs checks that it decides like kaudit on a
-- sample, so the comparison is between equal work. Usage (Fluent Bit's `lua` filter, LuaJIT):
--
--   filters:
--     - name: lua
--       match: kube.audit
--       script: /etc/fluent-bit/kaudit-policy.lua
--       call: kaudit_policy
--
-- What it does per event, as kube-apiserver's policy checker does (k8s.io/apiserver
-- pkg/audit/policy/checker.go): the first matching rule gives the level; level None or the
-- stage RequestReceived (omitStages) drops the event; otherwise the level written is the lower
-- of the rule's and the one recorded, and requestObject (below Request) and responseObject
-- (below RequestResponse) are removed. Simplifications a Lua user would make, that kaudit does
-- not: the namespace is objectRef.namespace (kaudit rebuilds it from the request URL as the
-- apiserver saw it), and resourceNames are not supported (the seed's policy uses none).

local LEVELS = { None = 0, Metadata = 1, Request = 2, RequestResponse = 3 }
local LEVEL_NAMES = { [0] = "None", [1] = "Metadata", [2] = "Request", [3] = "RequestResponse" }

local function set(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

-- The API groups the policy's Request and RequestResponse rules list ("" is the core group).
local KNOWN_GROUPS = set({
  "", "admissionregistration.k8s.io", "apps", "authentication.k8s.io", "authorization.k8s.io",
  "autoscaling", "batch", "certificates.k8s.io", "extensions", "networking.k8s.io", "policy",
  "rbac.authorization.k8s.io", "settings.k8s.io", "storage.k8s.io",
})
local READ_VERBS = set({ "get", "list", "watch" })
local CONTROL_PLANE = set({
  "system:kube-controller-manager", "system:kube-scheduler",
  "system:serviceaccount:kube-system:endpoint-controller",
})

local function has_group(groups, wanted)
  if type(groups) ~= "table" then return false end
  for _, g in ipairs(groups) do
    if g == wanted then return true end
  end
  return false
end

-- The level the policy decides for an event (rules in the policy's order; the first match wins).
local function decide(record)
  local user_info = record.user
  local user = type(user_info) == "table" and user_info.username or nil
  if user == "" then user = nil end
  local verb = record.verb
  local ref = record.objectRef
  if type(ref) ~= "table" then
    -- A non-resource request (/healthz, /version, ...): matched on the URL path.
    local uri = record.requestURI or ""
    local path = uri:match("^[^?]*")
    if path:sub(1, 8) == "/healthz" or path == "/version" or path:sub(1, 8) == "/swagger" then
      return 0
    end
    return 1
  end
  local group = ref.apiGroup or ""
  local resource = ref.resource or ""
  local sub = ref.subresource or ""
  local core = group == ""
  -- "resources: [x]" matches x without a subresource; a group without resources matches all.
  local plain = sub == ""
  if core and plain then
    if user == "system:kube-proxy" and verb == "watch" and (resource == "endpoints" or resource == "services") then
      return 0
    end
    if user == "system:unsecured" and verb == "get" and resource == "configmaps" and ref.namespace == "kube-system" then
      return 0
    end
    if resource == "nodes" and verb == "get" then
      if user == "kubelet" then return 0 end
      if user ~= nil and has_group(user_info.groups, "system:nodes") then return 0 end
    end
    if resource == "endpoints" and CONTROL_PLANE[user] and (verb == "get" or verb == "update")
      and ref.namespace == "kube-system" then
      return 0
    end
    if resource == "namespaces" and user == "system:apiserver" and verb == "get" then return 0 end
    if resource == "events" then return 0 end
    if resource == "secrets" or resource == "configmaps" then return 1 end
  end
  if group == "authentication.k8s.io" and plain and resource == "tokenreviews" then return 1 end
  if KNOWN_GROUPS[group] then
    if READ_VERBS[verb] then return 2 end
    return 3
  end
  return 1
end

function kaudit_policy(tag, timestamp, record)
  if record.stage == "RequestReceived" then
    return -1, timestamp, record
  end
  local level = decide(record)
  if level == 0 then
    return -1, timestamp, record
  end
  local recorded = LEVELS[record.level]
  if recorded ~= nil and recorded < level then
    level = recorded
  end
  local changed = false
  if recorded ~= level then
    record.level = LEVEL_NAMES[level]
    changed = true
  end
  if level < 2 and record.requestObject ~= nil then
    record.requestObject = nil
    changed = true
  end
  if level < 3 and record.responseObject ~= nil then
    record.responseObject = nil
    changed = true
  end
  if changed then
    return 2, timestamp, record
  end
  return 0, timestamp, record
end
