{{/*
Resources of one component. Every template takes: root (the chart context), name (the
component key, also its app.kubernetes.io/component label) and c (the component merged over
.Values.default by components.yaml).
*/}}

{{- define "carbon.deployment" -}}
{{- $c := .c }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "carbon.componentName" . }}
  labels:
    {{- include "carbon.labels" . | nindent 4 }}
spec:
  {{- if not $c.autoscaling.enabled }}
  replicas: {{ $c.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    {{- toYaml $c.strategy | nindent 4 }}
  selector:
    matchLabels:
      {{- include "carbon.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "carbon.labels" . | nindent 8 }}
        {{- with $c.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $c.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      {{- include "carbon.podCommon" . | nindent 6 }}
      terminationGracePeriodSeconds: {{ $c.terminationGracePeriodSeconds }}
      {{- with $c.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- range . }}
        - {{- toYaml . | nindent 10 }}
          labelSelector:
            matchLabels:
              {{- include "carbon.selectorLabels" $ | nindent 14 }}
        {{- end }}
      {{- end }}
      containers:
        - name: {{ .name }}
          image: {{ include "carbon.image" . }}
          imagePullPolicy: {{ $c.image.pullPolicy }}
          command:
            {{- toYaml $c.command | nindent 12 }}
          ports:
            {{- range $portName, $port := $c.ports }}
            - name: {{ $portName }}
              containerPort: {{ $port }}
              protocol: TCP
            {{- end }}
          env:
            {{- include "carbon.env" . | nindent 12 }}
          {{- range $kind := list "startup" "liveness" "readiness" }}
          {{- $probe := get $c.probes $kind }}
          {{- if include "carbon.hasProbeHandler" $probe }}
          {{ $kind }}Probe:
            {{- toYaml $probe | nindent 12 }}
          {{- else if ne $kind "startup" }}
          {{- fail (printf "components.%s.probes.%s needs a handler (httpGet, grpc, tcpSocket or exec)" $.name $kind) }}
          {{- end }}
          {{- end }}
          {{- if $c.preStopSleepSeconds }}
          {{- if ge (int $c.preStopSleepSeconds) (int $c.terminationGracePeriodSeconds) }}
          {{- fail (printf "components.%s: preStopSleepSeconds (%v) must be shorter than terminationGracePeriodSeconds (%v)" $.name $c.preStopSleepSeconds $c.terminationGracePeriodSeconds) }}
          {{- end }}
          lifecycle:
            preStop:
              exec:
                command: [sleep, {{ $c.preStopSleepSeconds | quote }}]
          {{- end }}
          resources:
            {{- toYaml $c.resources | nindent 12 }}
          securityContext:
            {{- include "carbon.containerSecurityContext" $c | nindent 12 }}
          volumeMounts:
            {{- include "carbon.volumeMounts" . | nindent 12 }}
      volumes:
        {{- include "carbon.volumes" . | nindent 8 }}
{{- end }}

{{/*
The component's Service; with headless: true, the same ports without a cluster IP, named
<component name>-headless (DNS returns every ready pod: client-side gRPC load balancing).
*/}}
{{- define "carbon.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ if .headless }}{{ include "carbon.truncName" (printf "%s-headless" (include "carbon.componentName" .)) }}{{ else }}{{ include "carbon.componentName" . }}{{ end }}
  labels:
    {{- include "carbon.labels" . | nindent 4 }}
  {{- with .c.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- if .headless }}
  type: ClusterIP
  clusterIP: None
  {{- else }}
  type: {{ .c.service.type }}
  {{- end }}
  selector:
    {{- include "carbon.selectorLabels" . | nindent 4 }}
  ports:
    {{- range $portName, $port := .c.ports }}
    - name: {{ $portName }}
      port: {{ $port }}
      targetPort: {{ $portName }}
      protocol: TCP
      {{- if eq $portName "grpc" }}
      appProtocol: grpc
      {{- else if eq $portName "http" }}
      appProtocol: http
      {{- end }}
    {{- end }}
{{- end }}

{{- define "carbon.podDisruptionBudget" -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "carbon.componentName" . }}
  labels:
    {{- include "carbon.labels" . | nindent 4 }}
spec:
  maxUnavailable: {{ .c.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "carbon.selectorLabels" . | nindent 6 }}
{{- end }}

{{- define "carbon.horizontalPodAutoscaler" -}}
{{- $hpa := .c.autoscaling }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "carbon.componentName" . }}
  labels:
    {{- include "carbon.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "carbon.componentName" . }}
  minReplicas: {{ $hpa.minReplicas }}
  maxReplicas: {{ $hpa.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $hpa.targetCPUUtilizationPercentage }}
{{- end }}

{{/*
Egress of every platform pod when networkPolicy.egress is set: pods of this release, then the
listed rules. Arg: root. Renders the policyTypes line and, when restricted, the egress block.
*/}}
{{- define "carbon.networkPolicyEgress" -}}
{{- if .Values.networkPolicy.egress }}
policyTypes: [Ingress, Egress]
egress:
  - to:
      - podSelector:
          matchLabels:
            app.kubernetes.io/name: {{ include "carbon.name" . }}
            app.kubernetes.io/instance: {{ .Release.Name }}
  {{- toYaml .Values.networkPolicy.egress | nindent 2 }}
{{- else }}
policyTypes: [Ingress]
{{- end }}
{{- end }}

{{/*
The pods that serve nothing (the topology Job, the `helm test` Pods): no ingress at all, and
the release's egress rules. Args: root, name (the component label), annotations (optional).
*/}}
{{- define "carbon.taskNetworkPolicy" -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "carbon.componentName" . }}
  labels:
    {{- include "carbon.labels" . | nindent 4 }}
  {{- with .annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  podSelector:
    matchLabels:
      {{- include "carbon.selectorLabels" . | nindent 6 }}
  {{- include "carbon.networkPolicyEgress" .root | trim | nindent 2 }}
{{- end }}

{{/*
Ingress to a component: pods of this release, the component's own networkPolicy.from peers
(all its ports), and metricsFrom peers on the metrics port; egress as networkPolicy.egress.
*/}}
{{- define "carbon.networkPolicy" -}}
{{- $root := .root }}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "carbon.componentName" . }}
  labels:
    {{- include "carbon.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "carbon.selectorLabels" . | nindent 6 }}
  {{- include "carbon.networkPolicyEgress" $root | trim | nindent 2 }}
  ingress:
    - from:
        - podSelector:
            matchLabels:
              app.kubernetes.io/name: {{ include "carbon.name" $root }}
              app.kubernetes.io/instance: {{ $root.Release.Name }}
    {{- with .c.networkPolicy.from }}
    - from:
        {{- toYaml . | nindent 8 }}
      ports:
        {{- range $portName, $port := $.c.ports }}
        - port: {{ $portName }}
          protocol: TCP
        {{- end }}
    {{- end }}
    {{- if and .c.metrics.enabled $root.Values.networkPolicy.metricsFrom }}
    - from:
        {{- toYaml $root.Values.networkPolicy.metricsFrom | nindent 8 }}
      ports:
        - port: {{ .c.metrics.port }}
          protocol: TCP
    {{- end }}
{{- end }}

{{- define "carbon.serviceMonitor" -}}
{{- $root := .root }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "carbon.componentName" . }}
  labels:
    {{- include "carbon.labels" . | nindent 4 }}
    {{- with $root.Values.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "carbon.selectorLabels" . | nindent 6 }}
  targetLabels:
    - app.kubernetes.io/component
  endpoints:
    - port: {{ .c.metrics.port }}
      path: {{ .c.metrics.path }}
      interval: {{ $root.Values.serviceMonitor.interval }}
      scrapeTimeout: {{ $root.Values.serviceMonitor.scrapeTimeout }}
{{- end }}
