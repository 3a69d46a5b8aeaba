# syntax=docker/dockerfile:1
ARG GO_VERSION=1.22

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ENV CGO_ENABLED=0 GOFLAGS="-mod=vendor"
WORKDIR /src
RUN go mod download && \
    # build the binary
    go build -o /out/app ./cmd/app
EXPOSE 8080 9090/udp

# runtime image
FROM gcr.io/distroless/static AS runtime
ENV APP_HOME /app
COPY --from=build /out/app /app/app
USER nonroot
ENTRYPOINT ["/app/app"]
