{{/*
Naming and labels.

Kubernetes names (Services, Deployments, labels) are limited to 63 characters. A plain cut
would map e.g. <long release>-account and <long release>-account-grpc to the same name, so
a name longer than 63 characters keeps its first 54 characters and gets "-" plus the first
8 hex digits of the SHA-256 of the whole name: distinct inputs stay distinct, and the same
input always gives the same name (upgrades keep their resources).
*/}}
{{- define "carbon.truncName" -}}
{{- if gt (len .) 63 }}
{{- printf "%s-%s" (trunc 54 . | trimSuffix "-") (sha256sum . | trunc 8) }}
{{- else }}
{{- . }}
{{- end }}
{{- end }}

{{- define "carbon.name" -}}
{{- include "carbon.truncName" (default .Chart.Name .Values.nameOverride) }}
{{- end }}

{{- define "carbon.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- include "carbon.truncName" .Values.fullnameOverride }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- include "carbon.truncName" .Release.Name }}
{{- else }}
{{- include "carbon.truncName" (printf "%s-%s" .Release.Name $name) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Resource name of one component: <fullname>-<component>. Args: root, name. */}}
{{- define "carbon.componentName" -}}
{{- include "carbon.truncName" (printf "%s-%s" (include "carbon.fullname" .root) .name) }}
{{- end }}

{{/* <fullname>-<suffix> for release-wide resources (dashboards, hooks). Args: root, suffix. */}}
{{- define "carbon.resourceName" -}}
{{- include "carbon.truncName" (printf "%s-%s" (include "carbon.fullname" .root) .suffix) }}
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
Container environment: downward API, OTel, external connections, CA bundle, gRPC security,
secrets, plain values. OTEL_SERVICE_NAME comes from the pod's component label. Args: root,
name, c, kind (workload kind for the resource attributes; default deployment), plainEnv
(optional NAME: string map the template adds, rendered before the component's env).
*/}}
{{- define "carbon.env" -}}
{{- $root := .root }}
{{- $c := .c -}}
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
{{- with $root.Values.otel.sampler }}
- name: OTEL_TRACES_SAMPLER
  value: {{ . | quote }}
{{- end }}
{{- with $root.Values.otel.samplerArg }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ . | quote }}
{{- end }}
{{- if include "carbon.caBundleFile" $root }}
- name: OTEL_EXPORTER_OTLP_CERTIFICATE
  value: {{ include "carbon.caBundleFile" $root | quote }}
{{- end }}
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
- name: CARBON_QUEUE_TYPE
  value: {{ $root.Values.rabbitmq.queueType | quote }}
{{- end }}
{{- if $c.mongodb }}
- name: MONGO_URI
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.mongodb.secret.name }}
      key: {{ $root.Values.mongodb.secret.key }}
{{- end }}
{{- with include "carbon.caBundleFile" $root }}
- name: SSL_CERT_FILE
  value: {{ . | quote }}
- name: REQUESTS_CA_BUNDLE
  value: {{ . | quote }}
{{- end }}
{{- if hasKey (default dict $c.ports) "grpc" }}
{{- $grpc := $root.Values.grpc }}
{{- if $grpc.tls.secretName }}
- name: GRPC_TLS_CERT_FILE
  value: /etc/carbon/grpc/tls/tls.crt
- name: GRPC_TLS_KEY_FILE
  value: /etc/carbon/grpc/tls/tls.key
{{- end }}
{{- if $grpc.tls.clientCaSecretName }}
- name: GRPC_TLS_CLIENT_CA_FILE
  value: /etc/carbon/grpc/client-ca/{{ $grpc.tls.clientCaKey }}
{{- end }}
{{- if $grpc.callers.secretName }}
- name: GRPC_CALLERS_FILE
  value: /etc/carbon/grpc/callers/{{ $grpc.callers.key }}
{{- end }}
{{- if $grpc.allowInsecure }}
- name: GRPC_ALLOW_INSECURE
  value: "true"
{{- end }}
{{- end }}
{{- range $envName, $ref := $c.secretEnv }}
{{- if $ref }}
- name: {{ $envName }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.name }}
      key: {{ $ref.key }}
{{- end }}
{{- end }}
{{- range $envName, $value := .plainEnv }}
- name: {{ $envName }}
  value: {{ $value | quote }}
{{- end }}
{{- range $envName, $value := $c.env }}
- name: {{ $envName }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- with $c.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Path of the mounted CA bundle, or nothing when none is configured. Arg: root. */}}
{{- define "carbon.caBundleFile" -}}
{{- with .Values.caBundle }}
{{- if or .secretName .configMapName }}
{{- printf "%s/%s" (trimSuffix "/" .mountPath) .key }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Volumes of a pod: the writable /tmp (the root filesystem is read-only), the CA bundle, the
gRPC certificates and callers file (components with a grpc port), then the release-wide and
the component's extraVolumes. Secrets are mounted as directories, never with subPath, so an
updated Secret reaches running pods. Args: root, c.
*/}}
{{- define "carbon.volumes" -}}
{{- $root := .root -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .c.tmpSizeLimit }}
{{- with $root.Values.caBundle }}
{{- if .secretName }}
- name: ca-bundle
  secret:
    secretName: {{ .secretName }}
    defaultMode: 292  # 0444
    items:
      - key: {{ .key }}
        path: {{ .key }}
{{- else if .configMapName }}
- name: ca-bundle
  configMap:
    name: {{ .configMapName }}
    defaultMode: 292  # 0444
    items:
      - key: {{ .key }}
        path: {{ .key }}
{{- end }}
{{- end }}
{{- if hasKey (default dict .c.ports) "grpc" }}
{{- with $root.Values.grpc }}
{{- if .tls.secretName }}
- name: grpc-tls
  secret:
    secretName: {{ .tls.secretName }}
    defaultMode: 288  # 0440
{{- end }}
{{- if .tls.clientCaSecretName }}
- name: grpc-client-ca
  secret:
    secretName: {{ .tls.clientCaSecretName }}
    defaultMode: 288  # 0440
{{- end }}
{{- if .callers.secretName }}
- name: grpc-callers
  secret:
    secretName: {{ .callers.secretName }}
    defaultMode: 288  # 0440
{{- end }}
{{- end }}
{{- end }}
{{- with $root.Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- with .c.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Mounts matching carbon.volumes. Args: root, c. */}}
{{- define "carbon.volumeMounts" -}}
{{- $root := .root -}}
- name: tmp
  mountPath: /tmp
{{- if include "carbon.caBundleFile" $root }}
- name: ca-bundle
  mountPath: {{ $root.Values.caBundle.mountPath }}
  readOnly: true
{{- end }}
{{- if hasKey (default dict .c.ports) "grpc" }}
{{- with $root.Values.grpc }}
{{- if .tls.secretName }}
- name: grpc-tls
  mountPath: /etc/carbon/grpc/tls
  readOnly: true
{{- end }}
{{- if .tls.clientCaSecretName }}
- name: grpc-client-ca
  mountPath: /etc/carbon/grpc/client-ca
  readOnly: true
{{- end }}
{{- if .callers.secretName }}
- name: grpc-callers
  mountPath: /etc/carbon/grpc/callers
  readOnly: true
{{- end }}
{{- end }}
{{- end }}
{{- with $root.Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- with .c.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Pod fields shared by Deployments, the topology Job and test Pods. Args: root, c,
serviceAccountName (optional; default: the chart's ServiceAccount).
*/}}
{{- define "carbon.podCommon" -}}
serviceAccountName: {{ default (include "carbon.serviceAccountName" .root) .serviceAccountName }}
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
