#!/usr/bin/env python3
"""Calls every gRPC method of a running chat-service once, from Python (grpcio).

The README's client example, as a script that can be run and checked: with `make run` going,

    pip install grpcio grpcio-tools
    TOKEN=$(JWT_SECRET=dev-jwt-secret .build/release/chat-service mint-token --subject alice)
    scripts/grpc-example.py --token "$TOKEN"

It compiles proto/ into a temporary directory, then calls ParticipantsService (GetParticipants,
BatchGetParticipants, RefreshParticipants with the admin token), ChatService (CreateChat,
PostMessage twice with one idempotency key, ListMessages) and grpc.health.v1.Health/Check,
printing one line per call. Exits 1 when a call does not answer as the API documents
(docs/GRPC.md).
"""
import argparse
import importlib
import pathlib
import sys
import tempfile

import grpc
from grpc_tools import protoc

# grpc/health/v1/health.proto is left out: its Python package would be `grpc.health`, which the
# grpcio package shadows. The two tiny health messages are written by hand (health_check).
PROTOS = ["chat/v1/participants.proto", "chat/v1/chat.proto"]
SERVING_STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def compile_protos(proto_root: pathlib.Path, out: pathlib.Path) -> None:
    include = pathlib.Path(protoc.__file__).parent / "_proto"  # google/protobuf/*.proto
    for proto in PROTOS:
        status = protoc.main([
            "protoc", f"-I{proto_root}", f"-I{include}",
            f"--python_out={out}", f"--grpc_python_out={out}", proto,
        ])
        if status != 0:
            sys.exit(f"protoc failed on {proto}")
    sys.path.insert(0, str(out))


def health_check(channel: grpc.Channel, service: str) -> str:
    """grpc.health.v1.Health/Check: the request is field 1 (string), the answer field 1 (enum)."""
    name = service.encode()
    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=lambda text: b"\x0a" + bytes([len(text)]) + text,
        response_deserializer=lambda body: body[1] if body[:1] == b"\x08" else 0)
    return SERVING_STATUS.get(check(name, timeout=10), "?")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", default="127.0.0.1:9092", help="host:port of the gRPC server")
    parser.add_argument("--token", required=True, help="a user JWT (chat-service mint-token)")
    parser.add_argument("--admin-token", default="dev-admin-token", help="ADMIN_TOKEN of the service")
    parser.add_argument("--chat", default="chat-1", help="a chat the upstream knows")
    arguments = parser.parse_args()

    failures = []

    def check(condition: bool, what: str) -> None:
        print(("ok    " if condition else "FAIL  ") + what)
        if not condition:
            failures.append(what)

    with tempfile.TemporaryDirectory() as generated:
        compile_protos(pathlib.Path(__file__).resolve().parent.parent / "proto", pathlib.Path(generated))
        pb = importlib.import_module("chat.v1.participants_pb2")
        pb_rpc = importlib.import_module("chat.v1.participants_pb2_grpc")
        chat_pb = importlib.import_module("chat.v1.chat_pb2")
        chat_rpc = importlib.import_module("chat.v1.chat_pb2_grpc")

        channel = grpc.insecure_channel(arguments.target)
        user = [("authorization", f"Bearer {arguments.token}")]
        admin = [("authorization", f"Bearer {arguments.admin_token}")]
        participants = pb_rpc.ParticipantsServiceStub(channel)
        chats = chat_rpc.ChatServiceStub(channel)

        read = participants.GetParticipants(pb.GetParticipantsRequest(chat_id=arguments.chat), metadata=user, timeout=10)
        check(read.chat_id == arguments.chat and len(read.participants) > 0,
              f"GetParticipants {read.chat_id}: {len(read.participants)} participants, stale={read.stale}")

        try:
            participants.GetParticipants(pb.GetParticipantsRequest(chat_id=arguments.chat), timeout=10)
            check(False, "GetParticipants without a token was answered")
        except grpc.RpcError as error:
            check(error.code() == grpc.StatusCode.UNAUTHENTICATED, f"GetParticipants without a token: {error.code().name}")

        batch = participants.BatchGetParticipants(
            pb.BatchGetParticipantsRequest(chat_ids=[arguments.chat, "no-such-chat"]), metadata=user, timeout=10)
        check([c.chat_id for c in batch.chats] == [arguments.chat] and list(batch.not_found) == ["no-such-chat"],
              f"BatchGetParticipants: chats {[c.chat_id for c in batch.chats]}, not_found {list(batch.not_found)}")

        refreshed = participants.RefreshParticipants(
            pb.RefreshParticipantsRequest(chat_id=arguments.chat), metadata=admin, timeout=30)
        check(refreshed.WhichOneof("result") == "chat", f"RefreshParticipants {arguments.chat}: {refreshed.WhichOneof('result')}")
        job = participants.RefreshParticipants(pb.RefreshParticipantsRequest(all_chats=True), metadata=admin, timeout=30)
        check(job.WhichOneof("result") == "job_id", f"RefreshParticipants all_chats: job {job.job_id}")

        created = chats.CreateChat(chat_pb.CreateChatRequest(title="Lunch", members=["bob"]), metadata=user, timeout=10)
        check(created.hosted and {m.user_id for m in created.members} >= {"bob"},
              f"CreateChat: {created.chat_id}, members {[m.user_id for m in created.members]}")

        first = chats.PostMessage(
            chat_pb.PostMessageRequest(chat_id=created.chat_id, text="hi", idempotency_key="k1"), metadata=user, timeout=10)
        again = chats.PostMessage(
            chat_pb.PostMessageRequest(chat_id=created.chat_id, text="hi", idempotency_key="k1"), metadata=user, timeout=10)
        check(first.message.id == again.message.id and again.replayed,
              f"PostMessage twice with one key: {first.message.id}, replayed={again.replayed}")

        page = chats.ListMessages(chat_pb.ListMessagesRequest(chat_id=created.chat_id, limit=20), metadata=user, timeout=10)
        check([m.text for m in page.messages] == ["hi"], f"ListMessages: {[m.text for m in page.messages]}")

        status = health_check(channel, "chat.v1.ParticipantsService")
        check(status == "SERVING", f"Health/Check chat.v1.ParticipantsService: {status}")
        channel.close()

    print(f"{len(failures)} failed" if failures else "every call answered as documented")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
