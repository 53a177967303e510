{{/*
sb.defaults: what every service chart has unless its values (values.yaml, then the
environment's file under charts/env/) say otherwise. docs/deployment.md explains each value.
*/}}
{{- define "sb.defaults" -}}
image:
  pullPolicy: IfNotPresent
replicaCount: 2
# DEVELOPMENT ONLY: Tilt replaces the binary in the running container (a writable root).
liveUpdate: false
terminationGracePeriodSeconds: 30
secret:
  create: false
  existingSecret: ""
  data: {}
upstreams: {}
callers: []
mesh:
  enabled: true
  image:
    repository: ghcr.io/switchboard/sb-sidecar
    tag: 0.1.0
  trustDomain: switchboard.local
  issuer: switchboard-mesh-ca
  opsPort: 15090
  inboundPortOffset: 10000
  outboundPortOffset: 20000
  certDuration: 24h
  certRenewBefore: 480m
  resources:
    requests: {cpu: 20m, memory: 32Mi}
    limits: {memory: 64Mi}
resources:
  requests: {cpu: 100m, memory: 64Mi}
  limits: {memory: 256Mi}
probes:
  startupFailureThreshold: 30
topologySpread:
  topologyKey: topology.kubernetes.io/zone
  whenUnsatisfiable: ScheduleAnyway
autoscaling:
  enabled: true
  minReplicas: 2
  maxReplicas: 10
  cpuUtilization: 70
  scaleDownStabilizationSeconds: 300
vpa:
  enabled: true
pdb:
  enabled: true
  minAvailable: 1
serviceMonitor:
  enabled: true
  interval: 15s
  scrapeTimeout: 5s
prometheusRule:
  enabled: true
alerts: []
networkPolicy:
  enabled: true
  monitoringNamespace: monitoring
  ingressNamespace: ingress-nginx
  otlpCollector: true
  stores: []
  storeSelectors:
    postgres:
      labels: {cnpg.io/cluster: switchboard-pg}
      ports: [5432]
    redis:
      labels: {app.kubernetes.io/name: sb-redis}
      ports: [6379, 26379]
    kafka:
      labels: {strimzi.io/cluster: switchboard}
      ports: [9092]
  extraEgress: []
ingress:
  enabled: false
  className: nginx
  host: ""
  tlsSecret: ""
  annotations: {}
  paths: []
extraVolumes: []
# Extra pod annotations, e.g. linkerd.io/inject: enabled with mesh.enabled false.
podAnnotations: {}
{{- end -}}
