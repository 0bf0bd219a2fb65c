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
