module github.com/acme-shop/gateway

go 1.22

require (
	github.com/go-chi/chi/v5 v5.0.11
	github.com/lestrrat-go/jwx/v2 v2.0.19
	github.com/redis/go-redis/v9 v9.4.0
	go.opentelemetry.io/otel v1.22.0
	gopkg.in/yaml.v3 v3.0.1
)
