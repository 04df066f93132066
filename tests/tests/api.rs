//! The gRPC surface as a scheduler sees it: health, reflection (v1 and v1alpha, for older
//! grpcurl), and typed errors with the right codes.

use agent_proto::v1 as pb;
use e2e::{privileged, Agent};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

#[test]
fn health_reflection_and_error_codes() {
    if !privileged("health_reflection") {
        return;
    }
    let a = Agent::start("api");
    rt().block_on(async {
        let ch = agent_proto::connect(&a.host).await.expect("connect");
        let mut h = tonic_health::pb::health_client::HealthClient::new(ch.clone());
        let r = h
            .check(tonic_health::pb::HealthCheckRequest { service: "agent.v1.ContainerService".into() })
            .await
            .unwrap();
        assert_eq!(r.into_inner().status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);

        use tonic_reflection::pb::v1 as r1;
        let mut c = r1::server_reflection_client::ServerReflectionClient::new(ch.clone());
        let req = r1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(r1::server_reflection_request::MessageRequest::ListServices(String::new())),
        };
        let mut s = c.server_reflection_info(tokio_stream::iter(vec![req])).await.unwrap().into_inner();
        let resp = s.message().await.unwrap().unwrap();
        let Some(r1::server_reflection_response::MessageResponse::ListServicesResponse(l)) = resp.message_response
        else {
            panic!("no service list")
        };
        let names: Vec<String> = l.service.into_iter().map(|s| s.name).collect();
        for want in
            ["agent.v1.ContainerService", "agent.v1.ImageService", "agent.v1.SystemService", "grpc.health.v1.Health"]
        {
            assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
        }
        use tonic_reflection::pb::v1alpha as ra;
        let mut c = ra::server_reflection_client::ServerReflectionClient::new(ch.clone());
        let req = ra::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(ra::server_reflection_request::MessageRequest::ListServices(String::new())),
        };
        let mut s = c.server_reflection_info(tokio_stream::iter(vec![req])).await.unwrap().into_inner();
        assert!(s.message().await.unwrap().is_some(), "v1alpha reflection must answer too");

        let mut cs = pb::container_service_client::ContainerServiceClient::new(ch.clone());
        let spec = |image: &str, name: &str| pb::CreateContainerRequest {
            spec: Some(pb::ContainerSpec { image: image.into(), name: name.into(), ..Default::default() }),
        };
        let e = cs.create(spec("nope:1", "")).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");
        assert!(e.message().contains("nope:1"));
        let e = cs.create(spec("", "")).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        let e = cs.create(spec("local/busybox", "bad/name")).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        let id = cs.create(spec("local/busybox", "one")).await.unwrap().into_inner().id;
        assert_eq!(id.len(), 64);
        let e = cs.create(spec("local/busybox", "one")).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::AlreadyExists);
        let e = cs.inspect(pb::InspectContainerRequest { id: "nothere".into() }).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound);
        let e = cs.kill(pb::KillContainerRequest { id: id.clone(), signal: "TERM".into() }).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::FailedPrecondition, "not running: {e:?}");
        // Stop and Remove(force) are idempotent.
        cs.stop(pb::StopContainerRequest { id: id.clone(), timeout_seconds: Some(1) }).await.unwrap();
        cs.remove(pb::RemoveContainerRequest { id: id.clone(), force: true, remove_volumes: false }).await.unwrap();
        cs.remove(pb::RemoveContainerRequest { id: id.clone(), force: true, remove_volumes: false }).await.unwrap();
        let e = cs.remove(pb::RemoveContainerRequest { id, force: false, remove_volumes: false }).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound);
        // ExecSync returns output and code.
        let id = cs
            .create(pb::CreateContainerRequest {
                spec: Some(pb::ContainerSpec {
                    image: "local/busybox".into(),
                    command: vec!["sleep".into(), "100".into()],
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .id;
        cs.start(pb::StartContainerRequest { id: id.clone() }).await.unwrap();
        let r = cs
            .exec_sync(pb::ExecSyncRequest {
                spec: Some(pb::ExecSpec {
                    container_id: id[..12].into(),
                    command: vec!["sh".into(), "-c".into(), "echo out; echo err >&2; exit 4".into()],
                    ..Default::default()
                }),
                timeout_seconds: 10,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!((r.stdout.as_slice(), r.stderr.as_slice(), r.exit_code), (&b"out\n"[..], &b"err\n"[..], 4));
        cs.remove(pb::RemoveContainerRequest { id, force: true, remove_volumes: false }).await.unwrap();
    });
    a.assert_no_leftovers();
}
