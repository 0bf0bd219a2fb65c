{{/* Chart name, truncated to the 63 characters of a label value. */}}
{{- define "licenseware-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects. */}}
{{- define "licenseware-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "licenseware-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "licenseware-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "licenseware-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "licenseware-operator.labels" -}}
helm.sh/chart: {{ include "licenseware-operator.chart" . }}
{{ include "licenseware-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: licenseware
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "licenseware-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "licenseware-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "licenseware-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* True when the chart writes the connections Secret from inline values. */}}
{{- define "licenseware-operator.inlineConnections" -}}
{{- with .Values.connections }}
{{- if or .kafkaBrokers .mongoUrl .redisUrl }}true{{ end }}
{{- end }}
{{- end }}

{{/*
The operator's rules on the resources it reconciles, granted per watched namespace
(Role) or cluster-wide (ClusterRole, rbac.clusterWide). The same rules as
manifests/base/role.yaml, where each one is explained; e2e/tests/e2e/rbac.rs
compares them.
*/}}
{{- define "licenseware-operator.rules" -}}
# Topics: watched, finalizer merge-patched; the Uploader controller gets and
# server-side applies (create, patch) the Topics it owns.
- apiGroups: [licenseware.io]
  resources: [topics]
  verbs: [get, list, watch, create, patch]
# Uploaders and the registry kinds: watched, siblings listed, registry
# finalizer merge-patched.
- apiGroups: [licenseware.io]
  resources: [uploaders, reports, reportcomponents, datatables, apps]
  verbs: [get, list, watch, patch]
# Status of every kind: server-side applied.
- apiGroups: [licenseware.io]
  resources: [topics/status, uploaders/status, reports/status, reportcomponents/status, datatables/status, apps/status]
  verbs: [patch]
# blockOwnerDeletion on objects owned by an Uploader (OwnerReferencesPermissionEnforcement).
- apiGroups: [licenseware.io]
  resources: [uploaders/finalizers]
  verbs: [update]
# Worker Deployments: owned (watched), read to check their owner, server-side
# applied, replicas by the lag scaler.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch]
# The worker's ConfigMap: its metadata watched (owner, changes to revert),
# then server-side applied.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, create, patch]
# events.k8s.io/v1 Events on the custom resources.
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}

{{/* The namespaces the operator watches: watchNamespaces, else the release namespace
(empty, meaning every namespace, only with rbac.clusterWide). */}}
{{- define "licenseware-operator.watchNamespaces" -}}
{{- if .Values.watchNamespaces }}
{{- join "," .Values.watchNamespaces }}
{{- else if not .Values.rbac.clusterWide }}
{{- .Release.Namespace }}
{{- end }}
{{- end }}

{{/* Kafka security settings (connections.kafka) as container env entries: the
same for the operator and the API. Files come from connections.kafka.filesSecret,
mounted at /etc/licenseware/kafka. */}}
{{- define "licenseware-operator.kafkaEnv" -}}
{{- with .Values.connections.kafka }}
{{- with .securityProtocol }}
- name: LW_KAFKA_SECURITY_PROTOCOL
  value: {{ . | quote }}
{{- end }}
{{- with .saslMechanism }}
- name: LW_KAFKA_SASL_MECHANISM
  value: {{ . | quote }}
{{- end }}
{{- with .saslUsername }}
- name: LW_KAFKA_SASL_USERNAME
  value: {{ . | quote }}
{{- end }}
{{- if .filesSecret }}
{{- range $var, $key := dict "LW_KAFKA_SASL_PASSWORD_FILE" .saslPasswordKey "LW_KAFKA_CA_FILE" .caKey "LW_KAFKA_CERT_FILE" .certKey "LW_KAFKA_KEY_FILE" .keyKey }}
{{- if $key }}
- name: {{ $var }}
  value: /etc/licenseware/kafka/{{ $key }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{- define "licenseware-operator.kafkaVolumeMount" -}}
{{- if .Values.connections.kafka.filesSecret }}
- name: kafka-files
  mountPath: /etc/licenseware/kafka
  readOnly: true
{{- end }}
{{- end }}

{{- define "licenseware-operator.kafkaVolume" -}}
{{- with .Values.connections.kafka.filesSecret }}
- name: kafka-files
  secret:
    secretName: {{ . }}
    defaultMode: 0440
{{- end }}
{{- end }}

{{/* The API's objects: <fullname>-api. */}}
{{- define "licenseware-operator.api.fullname" -}}
{{- printf "%s-api" (include "licenseware-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The API's selector: its own app name, so that the operator's selector (name +
instance) never matches the API's pods. */}}
{{- define "licenseware-operator.api.selectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-api" (include "licenseware-operator.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: api
{{- end }}

{{- define "licenseware-operator.api.labels" -}}
helm.sh/chart: {{ include "licenseware-operator.chart" . }}
{{ include "licenseware-operator.api.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: licenseware
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "licenseware-operator.api.serviceAccountName" -}}
{{- if .Values.api.serviceAccount.create }}
{{- default (include "licenseware-operator.api.fullname" .) .Values.api.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.api.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "licenseware-operator.api.image" -}}
{{- printf "%s:%s" .Values.api.image.repository (default .Chart.AppVersion .Values.api.image.tag) }}
{{- end }}

{{/* Whether the API may run more than one replica (for its PodDisruptionBudget). */}}
{{- define "licenseware-operator.api.replicated" -}}
{{- if .Values.api.autoscaling.enabled }}
{{- if gt (int .Values.api.autoscaling.maxReplicas) 1 }}true{{ end }}
{{- else if gt (int .Values.api.replicaCount) 1 }}true{{ end }}
{{- end }}
