{{- define "sb.deployment" -}}
{{- $v := .Values -}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "sb.name" . }}
  labels:
    {{- include "sb.labels" . | nindent 4 }}
spec:
  {{- if not $v.autoscaling.enabled }}
  replicas: {{ $v.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 1
  selector:
    matchLabels:
      {{- include "sb.selector" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "sb.labels" . | nindent 8 }}
      annotations:
        # A config change rolls the pods: the services read their environment once at start.
        checksum/config: {{ include "sb.configmap" . | sha256sum }}
        {{- if $v.liveUpdate }}
        # DEVELOPMENT ONLY (Tilt): the binary is replaced in the running container.
        switchboard.io/live-update: "true"
        {{- end }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "sb.name" . }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        runAsGroup: 10001
        fsGroup: 10001
        seccompProfile:
          type: RuntimeDefault
      {{- with $v.topologySpread }}
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: {{ .topologyKey }}
          whenUnsatisfiable: {{ .whenUnsatisfiable }}
          labelSelector:
            matchLabels:
              {{- include "sb.selector" $ | nindent 14 }}
      {{- end }}
      {{- if $v.mesh.enabled }}
      initContainers:
        # The mesh sidecar as a native sidecar (an init container that keeps running): it is
        # up before the service starts and stops after it, so no call leaves unencrypted.
        - name: mesh
          image: {{ printf "%s:%s" $v.mesh.image.repository $v.mesh.image.tag | quote }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          restartPolicy: Always
          args: ["--config-from-env"]
          env:
            - name: SB_MESH_SERVICE
              value: {{ $v.service.name | quote }}
            - name: SB_MESH_TRUST_DOMAIN
              value: {{ $v.mesh.trustDomain | quote }}
            - name: SB_MESH_CERT_DIR
              value: /var/run/sb-mesh
            - name: SB_MESH_INBOUND
              value: {{ printf "0.0.0.0:%d=127.0.0.1:%s" ($v.service.ports.rpc | int) (include "sb.meshRpcPort" .) | quote }}
            - name: SB_MESH_ALLOW
              value: {{ join "," $v.callers | quote }}
            - name: SB_MESH_OUTBOUND
              value: {{ include "sb.meshOutbound" . | quote }}
            - name: SB_MESH_OPS_PORT
              value: {{ $v.mesh.opsPort | quote }}
          ports:
            - name: rpc
              containerPort: {{ $v.service.ports.rpc }}
            - name: mesh-ops
              containerPort: {{ $v.mesh.opsPort }}
          startupProbe:
            httpGet:
              path: /healthz
              port: mesh-ops
            periodSeconds: 1
            failureThreshold: 30
          livenessProbe:
            httpGet:
              path: /healthz
              port: mesh-ops
            periodSeconds: 10
          resources:
            {{- toYaml $v.mesh.resources | nindent 12 }}
          securityContext:
            {{- include "sb.containerSecurityContext" true | nindent 12 }}
          volumeMounts:
            - name: mesh-certs
              mountPath: /var/run/sb-mesh
              readOnly: true
      {{- end }}
      containers:
        - name: {{ $v.service.name }}
          image: {{ printf "%s:%s" $v.image.repository (required "image.tag: the image to run must be named" $v.image.tag) | quote }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          envFrom:
            - configMapRef:
                name: {{ include "sb.name" . }}-config
          {{- if $v.secretEnv }}
          env:
            {{- $secret := include "sb.secretName" . }}
            {{- range $v.secretEnv }}
            - name: {{ . }}
              valueFrom:
                secretKeyRef:
                  name: {{ $secret }}
                  key: {{ . }}
            {{- end }}
          {{- end }}
          ports:
            - name: ops
              containerPort: {{ $v.service.ports.ops }}
            {{- if not $v.mesh.enabled }}
            - name: rpc
              containerPort: {{ $v.service.ports.rpc }}
            {{- end }}
            {{- with $v.service.edge }}
            - name: http
              containerPort: {{ .port }}
            {{- end }}
          startupProbe:
            httpGet:
              path: /healthz
              port: ops
            periodSeconds: 2
            failureThreshold: {{ $v.probes.startupFailureThreshold }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: ops
            periodSeconds: 10
            timeoutSeconds: 2
            failureThreshold: 3
          readinessProbe:
            httpGet:
              path: /ready
              port: ops
            periodSeconds: 5
            timeoutSeconds: 2
            failureThreshold: 2
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- include "sb.containerSecurityContext" (not $v.liveUpdate) | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- range $v.extraVolumes }}
            - name: {{ .name }}
              mountPath: {{ .mountPath }}
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
        {{- if $v.mesh.enabled }}
        - name: mesh-certs
          secret:
            secretName: {{ include "sb.name" . }}-mesh-tls
        {{- end }}
        {{- range $v.extraVolumes }}
        - name: {{ .name }}
          {{- if .claimName }}
          persistentVolumeClaim:
            claimName: {{ .claimName }}
          {{- else }}
          emptyDir: {}
          {{- end }}
        {{- end }}
{{- if $v.mesh.enabled }}
---
# The pod's mesh identity: a short-lived certificate from the mesh CA (k8s/cert-manager), with
# the SPIFFE ID the callers' sidecars check in their allow-lists.
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: {{ include "sb.name" . }}-mesh
  labels:
    {{- include "sb.labels" . | nindent 4 }}
spec:
  secretName: {{ include "sb.name" . }}-mesh-tls
  duration: {{ $v.mesh.certDuration }}
  renewBefore: {{ $v.mesh.certRenewBefore }}
  privateKey:
    algorithm: ECDSA
    size: 256
    rotationPolicy: Always
  usages:
    - server auth
    - client auth
  uris:
    - {{ printf "spiffe://%s/ns/%s/sa/%s" $v.mesh.trustDomain .Release.Namespace (include "sb.name" .) }}
  dnsNames:
    - {{ include "sb.name" . }}
    - {{ printf "%s.%s.svc" (include "sb.name" .) .Release.Namespace }}
  issuerRef:
    kind: ClusterIssuer
    name: {{ $v.mesh.issuer }}
    group: cert-manager.io
{{- end }}
{{- end -}}

{{/* sb.containerSecurityContext: the issue's container rules; the argument is readOnlyRootFilesystem. */}}
{{- define "sb.containerSecurityContext" -}}
runAsNonRoot: true
readOnlyRootFilesystem: {{ . }}
allowPrivilegeEscalation: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* sb.meshOutbound: "127.0.0.1:<local>=sb-<name>:<port>,..." for every upstream. */}}
{{- define "sb.meshOutbound" -}}
{{- $out := list -}}
{{- range $name, $port := .Values.upstreams -}}
{{- $out = append $out (printf "127.0.0.1:%d=sb-%s:%d" (add $port $.Values.mesh.outboundPortOffset | int) $name ($port | int)) -}}
{{- end -}}
{{- join "," $out -}}
{{- end -}}
