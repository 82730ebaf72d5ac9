{{/* Names: <release>-<chart>, shortened to the 63 characters Kubernetes allows. */}}
{{- define "locust-aiapi.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "locust-aiapi.fullname" -}}
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

{{/* Component names leave room for the suffixes Kubernetes adds to pod names. */}}
{{- define "locust-aiapi.masterName" -}}
{{- printf "%s-master" (include "locust-aiapi.fullname" . | trunc 56 | trimSuffix "-") }}
{{- end }}

{{- define "locust-aiapi.workerName" -}}
{{- printf "%s-worker" (include "locust-aiapi.fullname" . | trunc 56 | trimSuffix "-") }}
{{- end }}

{{- define "locust-aiapi.mockName" -}}
{{- printf "%s-mock" (include "locust-aiapi.fullname" . | trunc 58 | trimSuffix "-") }}
{{- end }}

{{- define "locust-aiapi.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "locust-aiapi.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component: master, worker or mock. Usage: include "...selectorLabels" (list . "master") */}}
{{- define "locust-aiapi.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "locust-aiapi.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "locust-aiapi.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "locust-aiapi.secretName" -}}
{{- default (printf "%s-api-key" (include "locust-aiapi.fullname" .)) .Values.apiKey.existingSecret }}
{{- end }}

{{- define "locust-aiapi.secretKey" -}}
{{- if .Values.apiKey.existingSecret }}{{ .Values.apiKey.existingSecretKey }}{{ else }}api-key{{ end }}
{{- end }}

{{- define "locust-aiapi.hasApiKey" -}}
{{- if or .Values.apiKey.value .Values.apiKey.existingSecret }}true{{ end }}
{{- end }}

{{- define "locust-aiapi.locustfileConfigMap" -}}
{{- if .Values.locustfile.existingConfigMap }}
{{- .Values.locustfile.existingConfigMap }}
{{- else if .Values.locustfile.content }}
{{- printf "%s-locustfile" (include "locust-aiapi.fullname" .) }}
{{- end }}
{{- end }}

{{/* The locustfile's path in the containers: the ConfigMap's mount, or one shipped in the image. */}}
{{- define "locust-aiapi.locustfilePath" -}}
{{- if include "locust-aiapi.locustfileConfigMap" . }}
{{- printf "/home/locust/mnt/locustfile/%s" .Values.locustfile.key }}
{{- else }}
{{- printf "/home/locust/locustfiles/%s" .Values.locustfile.builtin }}
{{- end }}
{{- end }}

{{- define "locust-aiapi.host" -}}
{{- if .Values.locust.host }}
{{- .Values.locust.host }}
{{- else if .Values.mock.enabled }}
{{- printf "http://%s:%d" (include "locust-aiapi.mockName" .) (int .Values.mock.port) }}
{{- end }}
{{- end }}

{{- define "locust-aiapi.expectedWorkers" -}}
{{- if .Values.worker.autoscaling.enabled }}{{ .Values.worker.autoscaling.minReplicas }}{{ else }}{{ .Values.worker.replicas }}{{ end }}
{{- end }}

{{/* Refuse combinations that cannot work, with a message that says what to do. */}}
{{- define "locust-aiapi.validate" -}}
{{- if and .Values.apiKey.value .Values.apiKey.existingSecret }}
{{- fail "apiKey: set either value or existingSecret, not both" }}
{{- end }}
{{- if and .Values.locustfile.content .Values.locustfile.existingConfigMap }}
{{- fail "locustfile: set either content or existingConfigMap, not both" }}
{{- end }}
{{- if not (or (include "locust-aiapi.host" .) (include "locust-aiapi.locustfileConfigMap" .)) }}
{{- fail "no target: set locust.host to the API under test, or mock.enabled=true (the image's locustfiles default to a mock on 127.0.0.1, which is not in the pod)" }}
{{- end }}
{{- range .Values.locust.extraArgs }}
{{- if hasPrefix "--ai-api-key" (toString .) }}
{{- fail "locust.extraArgs: the API key must not be a command-line argument (visible in the pod spec and ps); use apiKey.value or apiKey.existingSecret" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Environment shared by master and workers. Locust sends the master's --ai-* options to the
workers with every spawn, overriding theirs, so both get the key and the model. */}}
{{- define "locust-aiapi.env" -}}
{{- if include "locust-aiapi.hasApiKey" . }}
- name: OPENAI_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "locust-aiapi.secretName" . }}
      key: {{ include "locust-aiapi.secretKey" . }}
{{- end }}
{{- with .Values.locust.model }}
- name: AI_MODEL
  value: {{ . | quote }}
{{- end }}
{{- range .Values.locust.extraEnv }}
{{- $var := deepCopy . }}
{{- if hasKey $var "value" }}{{ $_ := set $var "value" (toString $var.value) }}{{ end }}
- {{ toYaml $var | indent 2 | trim }}
{{- end }}
{{- end }}

{{/* A checksum of the inline locustfile, so that `helm upgrade` restarts the pods when it changes.
None of the API key: not even a hash of it goes into a pod spec. */}}
{{- define "locust-aiapi.checksums" -}}
{{- with .Values.locustfile.content }}
checksum/locustfile: {{ . | sha256sum }}
{{- end }}
{{- end }}

{{- define "locust-aiapi.volumes" -}}
- name: tmp
  emptyDir: {}
- name: work
  emptyDir: {}
{{- with include "locust-aiapi.locustfileConfigMap" . }}
- name: locustfile
  configMap:
    name: {{ . }}
{{- end }}
{{- end }}

{{- define "locust-aiapi.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: work
  mountPath: /home/locust/work
{{- if include "locust-aiapi.locustfileConfigMap" . }}
- name: locustfile
  mountPath: /home/locust/mnt/locustfile
  readOnly: true
{{- end }}
{{- end }}
