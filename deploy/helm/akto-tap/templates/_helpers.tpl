{{/*
Chart name, truncated to 63 characters (DNS label).
*/}}
{{- define "akto-tap.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full resource name: fullnameOverride, else the release name when it already contains the chart
name, else RELEASE-CHART.
*/}}
{{- define "akto-tap.fullname" -}}
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

{{/*
chart label value: NAME-VERSION.
*/}}
{{- define "akto-tap.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every resource.
*/}}
{{- define "akto-tap.labels" -}}
helm.sh/chart: {{ include "akto-tap.chart" . }}
app.kubernetes.io/name: {{ include "akto-tap.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: akto-tap
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels (immutable after install: never add to them).
*/}}
{{- define "akto-tap.selectorLabels" -}}
app.kubernetes.io/name: {{ include "akto-tap.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
ServiceAccount of the capture pods.
*/}}
{{- define "akto-tap.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "akto-tap.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Capture image reference.
*/}}
{{- define "akto-tap.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
Ingest image reference.
*/}}
{{- define "akto-tap.ingestImage" -}}
{{- printf "%s:%s" .Values.ingest.image.repository (default .Chart.AppVersion .Values.ingest.image.tag) }}
{{- end }}

{{/*
Secret with Akto's Kafka credential variables.
*/}}
{{- define "akto-tap.kafkaSecretName" -}}
{{- default (printf "%s-kafka" (include "akto-tap.fullname" .)) .Values.kafka.existingSecret }}
{{- end }}

{{/*
PriorityClass of the capture pods ("" = none).
*/}}
{{- define "akto-tap.priorityClassName" -}}
{{- if .Values.capture.priorityClass.name }}
{{- .Values.capture.priorityClass.name }}
{{- else if .Values.capture.priorityClass.create }}
{{- printf "%s-node" (include "akto-tap.fullname" .) }}
{{- end }}
{{- end }}

{{/*
Secret with the ingest API key (key AKTO_DI_API_KEY; referenced as optional: no Secret = no
authentication).
*/}}
{{- define "akto-tap.ingestApiKeySecretName" -}}
{{- default (printf "%s-ingest" (include "akto-tap.fullname" .)) .Values.ingest.existingApiKeySecret }}
{{- end }}

{{/*
A TOML array of strings from a list.
*/}}
{{- define "akto-tap.tomlStrings" -}}
[{{ range $i, $v := . }}{{ if $i }}, {{ end }}{{ $v | toString | quote }}{{ end }}]
{{- end }}

{{/*
A TOML array of integers from a list (YAML numbers arrive as floats: print them as integers).
*/}}
{{- define "akto-tap.tomlInts" -}}
[{{ range $i, $v := . }}{{ if $i }}, {{ end }}{{ int64 $v }}{{ end }}]
{{- end }}

{{/*
config.toml of the capture agent.
*/}}
{{- define "akto-tap.configToml" -}}
{{- if .Values.configOverride }}
{{- .Values.configOverride }}
{{- else }}
{{- $c := .Values.config -}}
[capture]
interfaces = {{ include "akto-tap.tomlStrings" $c.capture.interfaces }}
backend = {{ $c.capture.backend | quote }}
ports = {{ include "akto-tap.tomlInts" $c.capture.ports }}

[kafka]
brokers = {{ required "config.kafka.brokers is required" $c.kafka.brokers | quote }}
topic = {{ $c.kafka.topic | quote }}
spool_dir = "/var/lib/akto-tap/spool"
spool_max_mib = {{ int64 $c.kafka.spool_max_mib }}

[record]
account_id = {{ $c.record.account_id | toString | quote }}
max_body_bytes = {{ int64 $c.record.max_body_bytes }}

[tls]
mode = {{ $c.tls.mode | quote }}

[workload]
mode = {{ $c.workload.mode | quote }}
k8s_refresh_secs = {{ $c.workload.k8s_refresh_secs }}

[metrics]
listen = "0.0.0.0:{{ int64 .Values.metrics.port }}"

[log]
format = {{ $c.log.format | quote }}
level = {{ $c.log.level | quote }}
{{- end }}
{{- end }}
