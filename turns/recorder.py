"""Persistence handed to a turn: the page's turns are recorded into their session (the
request first, the answer checkpointed while it streams, then complete); a stateless request
(/v1) gets no recorder and nothing is saved. The turn never asks which it has."""
from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.contracts import GenerationParams
from store.image_files import StoredImage
from store.sessions import SessionStore


@dataclass(frozen=True)
class Branching:
    """Where in the tree a turn goes instead of the end of the active branch: after `parent_id`
    (an edited message becomes a sibling of the one it replaces); with `answer_again`, no new
    message: that user turn is answered again (the new answer a sibling of the old ones)."""

    parent_id: int | None
    answer_again: int | None = None


def text_history(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """History as plain chat messages (with their turn's "id"). A message that came with images
    says so, and the vision model's answer follows it, so a text model knows what the pictures showed."""
    messages = []
    for turn in history:
        content = turn["content"]
        if turn.get("images"):
            content = f"[{len(turn['images'])} image(s) attached] {content}"
        messages.append({"role": turn["role"], "content": content, "id": turn.get("id")})
    return messages


class SessionRecorder:
    """Records one chat turn (request and answer) into a session of the page."""

    def __init__(self, sessions: SessionStore, session_id: str, branching: Branching | None = None) -> None:
        self.sessions, self.session_id, self.branching = sessions, session_id, branching
        self.request_saved = False
        self._answer: asyncio.Task[int] | None = None  # the assistant turn's id, created as streaming starts

    async def save_request(self, message: str, images: Sequence[StoredImage]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The history before the message, then the message saved (or, for "answer again", the
        old question made current); returns (history, where the question sits in the tree)."""
        sessions, branching = self.sessions, self.branching
        if branching is not None:
            await sessions.set_active_leaf(self.session_id, branching.parent_id)
        history = text_history(await sessions.history(self.session_id))
        if branching is not None and branching.answer_again is not None:
            await sessions.set_active_leaf(self.session_id, branching.answer_again)
            question_id = branching.answer_again
        else:
            question_id = (await sessions.add_turn(self.session_id, "user", message, images=list(images)))["id"]
        self.request_saved = True
        return history, await sessions.placement(question_id)

    def start_answer(self, model: str) -> None:
        """The assistant turn, created beside the first tokens (off the time-to-first-token path)."""
        self._answer = asyncio.ensure_future(self.sessions.start_answer(self.session_id, model))

    async def checkpoint(self, text: str) -> None:
        if self._answer is not None:
            await self.sessions.checkpoint_answer(await self._answer, text)

    async def save_answer(self, text: str, sources: list[dict[str, Any]], model: str,
                          result: dict[str, Any]) -> dict[str, Any]:
        """The answer complete (or stopped / failed), with where it sits in the tree."""
        if self._answer is not None:
            turn = await self.sessions.finish_answer(await self._answer, text, sources, model=model, **result)
        else:
            turn = await self.sessions.add_turn(self.session_id, "assistant", text, model=model or None,
                                                sources=sources, **result)
        return await self.sessions.placement(turn["id"])


class PictureRecorder:
    """Records an image-generation request into a session: the prompt first, then the result
    turn with its pictures and each picture's parameters."""

    def __init__(self, sessions: SessionStore, session_id: str) -> None:
        self.sessions, self.session_id = sessions, session_id
        self.request_saved = False

    async def save_request(self, prompt: str, uploaded: StoredImage | None) -> dict[str, Any]:
        """The prompt saved; where it sits in the tree (the page places it, as a chat message)."""
        turn = await self.sessions.add_turn(self.session_id, "user", prompt, images=[uploaded] if uploaded else [],
                                            kind="image")
        self.request_saved = True
        return await self.sessions.placement(turn["id"])

    async def save_result(self, made: list[tuple[StoredImage, int, dict[str, Any]]], finish: str, model: str,
                          params: GenerationParams) -> int:
        """The answer turn with its pictures and why the request ended; its id."""
        turn = await self.sessions.add_turn(self.session_id, "assistant", "", images=[image for image, _, _ in made],
                                            kind="image", model=model or None, finish_reason=finish)
        for image, seed, picture_timings in made:
            await self.sessions.generations.add(image.id, self.session_id, params.prompt, seed, model,
                                               params.as_dict() | {"seed": seed}, picture_timings)
        return int(turn["id"])
