from django.shortcuts import render
from django.urls import path

urlpatterns = [
    path("verify/", lambda request: render(request, "registry/home.html"), name="verify"),
]
