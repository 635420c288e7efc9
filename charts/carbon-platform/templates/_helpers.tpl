{{/*
Naming and labels.
*/}}
{{- define "carbon.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "carbon.fullname" -}}
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

{{/* Resource name of one component: <fullname>-<component>. Args: root, name. */}}
{{- define "carbon.componentName" -}}
{{- printf "%s-%s" (include "carbon.fullname" .root) .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "carbon.selectorLabels" -}}
app.kubernetes.io/name: {{ include "carbon.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/* Standard labels. Args: root, name (component). */}}
{{- define "carbon.labels" -}}
{{ include "carbon.selectorLabels" . }}
app.kubernetes.io/part-of: carbon-platform
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end }}

{{/* Labels of resources that belong to the release, not to one component. Arg: root. */}}
{{- define "carbon.releaseLabels" -}}
app.kubernetes.io/name: {{ include "carbon.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: carbon-platform
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{- define "carbon.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "carbon.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Deep merge of src into dst, in place: maps merge key by key, anything else (lists, scalars,
false, 0) in src replaces dst. Sprig's merge/mergeOverwrite would ignore false and 0.
Args: dst, src.
*/}}
{{- define "carbon.mergeInto" -}}
{{- $dst := .dst }}
{{- range $key, $value := .src }}
{{- if and (kindIs "map" $value) (kindIs "map" (get $dst $key)) }}
{{- include "carbon.mergeInto" (dict "dst" (get $dst $key) "src" $value) }}
{{- else }}
{{- $_ := set $dst $key $value }}
{{- end }}
{{- end }}
{{- end }}

{{/* Image reference. Args: root, c (resolved component). */}}
{{- define "carbon.image" -}}
{{- $img := .c.image }}
{{- $tag := default .root.Chart.AppVersion $img.tag }}
{{- printf "%s/%s:%s" $img.registry $img.name $tag }}{{ if $img.digest }}@{{ $img.digest }}{{ end }}
{{- end }}

{{/* Pod-level security context: non-root, seccomp RuntimeDefault. Arg: c. */}}
{{- define "carbon.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .runAsUser }}
runAsGroup: {{ .runAsGroup }}
fsGroup: {{ .runAsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container security context: fixed, not configurable. Arg: c. */}}
{{- define "carbon.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .runAsUser }}
runAsGroup: {{ .runAsGroup }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Container environment: downward API, OTel, external connections, secrets, plain values.
OTEL_SERVICE_NAME comes from the pod's component label. Args: root, name, c, kind (workload
kind for the resource attributes; default deployment).
*/}}
{{- define "carbon.env" -}}
{{- $root := .root }}
{{- $c := .c }}
- name: K8S_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: K8S_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: K8S_NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
- name: OTEL_SERVICE_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.labels['app.kubernetes.io/component']
{{- if $root.Values.otel.enabled }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $root.Values.otel.endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ $root.Values.otel.protocol | quote }}
{{- else }}
- name: OTEL_SDK_DISABLED
  value: "true"
{{- end }}
{{- $attrs := list "service.namespace=carbon-platform" (printf "service.version=%s" (default $root.Chart.AppVersion $c.image.tag)) (printf "deployment.environment.name=%s" $root.Values.environment) "k8s.namespace.name=$(K8S_NAMESPACE)" "k8s.pod.name=$(K8S_POD_NAME)" "k8s.node.name=$(K8S_NODE_NAME)" (printf "k8s.%s.name=%s" (default "deployment" .kind) (include "carbon.componentName" .)) }}
{{- range $key, $value := $root.Values.otel.resourceAttributes }}
{{- $attrs = append $attrs (printf "%s=%s" $key $value) }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $attrs | quote }}
{{- if $c.amqp }}
- name: AMQP_URI
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.amqp.secret.name }}
      key: {{ $root.Values.amqp.secret.key }}
{{- end }}
{{- if $c.mongodb }}
- name: MONGO_URI
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.mongodb.secret.name }}
      key: {{ $root.Values.mongodb.secret.key }}
{{- end }}
{{- range $envName, $ref := $c.secretEnv }}
- name: {{ $envName }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.name }}
      key: {{ $ref.key }}
{{- end }}
{{- range $envName, $value := $c.env }}
- name: {{ $envName }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- with $c.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Writable /tmp on a read-only root filesystem. Arg: c. */}}
{{- define "carbon.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .tmpSizeLimit }}
{{- end }}

{{/* Pod fields shared by Deployments and the topology Job. Args: root, c. */}}
{{- define "carbon.podCommon" -}}
serviceAccountName: {{ include "carbon.serviceAccountName" .root }}
automountServiceAccountToken: false
enableServiceLinks: false
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- include "carbon.podSecurityContext" .c | nindent 2 }}
{{- with .c.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .c.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .c.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .c.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end }}

{{/* One probe, or nothing when it has no handler. Args: probe (merged timings + handler). */}}
{{- define "carbon.hasProbeHandler" -}}
{{- if or .httpGet .grpc .tcpSocket .exec }}true{{ end }}
{{- end }}
