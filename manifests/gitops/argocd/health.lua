-- Argo CD health of the licenseware.io kinds (Topic, Uploader, Report, App,
-- ReportComponent, DataTable). The operator sets status.observedGeneration and a
-- Ready condition on every kind; this reads them the way kstatus (Flux) does:
--   no status yet, or a status of an older generation  -> Progressing
--   Ready=True                                          -> Healthy
--   Ready=False for a reason only a change can fix      -> Degraded
--   paused or unmanaged (annotations)                   -> Suspended
--   anything else (Ready=False while waiting, Unknown)  -> Progressing
-- The source of the six keys of argocd-cm-health.yaml; e2e/tests/e2e/gitops.rs
-- checks that they are this file and runs it on sample statuses.
local hs = {}
local degraded = {
  InvalidSpec = true, NotSupported = true, ResourceConflict = true,
  ImageNotAllowed = true, PipelineNotAllowed = true, CollectionNotAllowed = true,
  ComponentInvalid = true, KafkaError = true, RegistryError = true,
  KubernetesError = true, InternalError = true,
}
local suspended = { ReconciliationPaused = true, Unmanaged = true }
if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report a status"
  return hs
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end
local ready = nil
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "Ready" then
      ready = condition
    end
  end
end
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end
local message = ready.message
if message == nil or message == "" then
  message = ready.reason or ready.status
elseif ready.reason ~= nil and ready.reason ~= "" then
  message = ready.reason .. ": " .. message
end
hs.message = message
if suspended[ready.reason] then
  hs.status = "Suspended"
elseif ready.status == "True" then
  hs.status = "Healthy"
elseif ready.status == "False" and degraded[ready.reason] then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
return hs
