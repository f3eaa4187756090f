package ui

import (
	"context"
	"fmt"
	"time"

	tea "charm.land/bubbletea/v2"

	"emitop/model"
)

// ioTimeout bounds every backend call made for the screen.
const ioTimeout = 10 * time.Second

// seriesLen is how many recent values a sparkline asks for.
const seriesLen = 30

// Messages from commands to the model.
type (
	subscribedMsg struct {
		snapshots <-chan model.Snapshot
		cancel    func()
	}
	snapshotMsg  struct{ snap model.Snapshot }
	closedMsg    struct{}
	docEventsMsg struct {
		key    docKey
		events []model.Event
		err    error
	}
	historyMsg struct {
		req    EventFilter
		events []model.Event
		err    error
	}
	// tickMsg is the clock; gen tells the current ticker from stale ones (a tea.Tick
	// cannot be cancelled).
	tickMsg struct{ gen int }
)

func subscribe(b Backend) tea.Cmd {
	return func() tea.Msg {
		ch, cancel := b.Subscribe()
		return subscribedMsg{ch, cancel}
	}
}

// next waits for the next snapshot; the model asks again after each one.
func next(ch <-chan model.Snapshot) tea.Cmd {
	return func() tea.Msg {
		s, ok := <-ch
		if !ok {
			return closedMsg{}
		}
		return snapshotMsg{s}
	}
}

func tick(gen int) tea.Cmd {
	return tea.Tick(time.Second, func(time.Time) tea.Msg { return tickMsg{gen} })
}

func refresh(b Backend) tea.Cmd {
	return func() tea.Msg {
		b.Refresh()
		return nil
	}
}

func fetchDocEvents(b Backend, k docKey) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		evs, err := b.DocumentEvents(ctx, k.account, k.id, historyLimit)
		if err != nil {
			err = fmt.Errorf("events of %s %s: %w", k.account, k.id, err)
		}
		return docEventsMsg{k, evs, err}
	}
}

func fetchEvents(b Backend, req EventFilter) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		evs, err := b.Events(ctx, req)
		if err != nil {
			err = fmt.Errorf("events: %w", err)
		}
		return historyMsg{req, evs, err}
	}
}
