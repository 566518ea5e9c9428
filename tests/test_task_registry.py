"""A user's own task: registered by name, or named "module:attribute"."""

from __future__ import annotations

import textwrap

import pytest

from blackprop.tasks import Task, get_task, register, task_names, unregister

USER_MODULE = textwrap.dedent('''
    import torch
    from blackprop import Program
    from blackprop.spaces import Discrete
    from blackprop.tasks import Defaults, Task, TaskData

    def load(split, size, seed):
        g = torch.Generator().manual_seed(seed)
        bits = torch.randint(0, 2, (size,), generator=g)
        return TaskData(pool=bits.float().view(-1, 1, 1), index=torch.arange(size).unsqueeze(1),
                        labels=bits.tolist(), source="user bits")

    def make_task():
        return Task(name="user-bits", description="copy a bit", load_data=load,
                    make_program=lambda: Program(lambda b: b, inputs=(Discrete([0, 1]),), output=Discrete([0, 1])),
                    make_model=lambda: torch.nn.Identity(), defaults=Defaults(train_size=8, valid_size=4, test_size=4))

    bits = make_task()
    not_a_task = 3
''')


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "my_user_tasks.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_user_tasks"


def test_module_attribute_names_a_task_or_a_factory(user_module):
    task = get_task(f"{user_module}:bits")
    assert isinstance(task, Task) and task.name == "user-bits"
    data = task.data("valid", 4)
    assert len(data) == 4 and data.source == "user bits"
    assert get_task(f"{user_module}:make_task").name == "user-bits"  # a factory is called
    assert "user-bits" not in task_names()  # importing does not register


def test_module_attribute_errors_name_the_problem(user_module):
    with pytest.raises(ValueError, match="cannot import module 'no_such_module_here'"):
        get_task("no_such_module_here:task")
    with pytest.raises(ValueError, match=f"module '{user_module}' has no attribute 'missing'"):
        get_task(f"{user_module}:missing")
    with pytest.raises(ValueError, match="expected a blackprop.tasks.Task or a function returning one, got int"):
        get_task(f"{user_module}:not_a_task")
    with pytest.raises(ValueError, match="unknown task 'nope'; valid: sum2, .*'module:attribute'"):
        get_task("nope")


def test_register_and_unregister(user_module):
    task = get_task(f"{user_module}:bits")
    assert register(task) is task
    try:
        assert get_task("user-bits") is task and "user-bits" in task_names()
    finally:
        unregister("user-bits")
    assert "user-bits" not in task_names()
    with pytest.raises(TypeError, match="register\\(task\\): expected a blackprop.tasks.Task, got str"):
        register("user-bits")
    with pytest.raises(ValueError, match="unregister\\('user-bits'\\): no such task"):
        unregister("user-bits")
