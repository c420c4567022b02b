from app import greet


def test_greet():
    assert greet("codebuild") == "hello, codebuild"
