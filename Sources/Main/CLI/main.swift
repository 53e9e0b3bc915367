print("chat-service")
